// Builds the `clusterguard` CLI into dist/cli/ with esbuild (the one tsx brings): src/cli/main.ts
// and what it imports from src/ bundled as ES modules, the lazily loaded parts in chunks of their
// own, npm packages left to node_modules except commander (needed for every call). Keyed by a
// hash of the sources: an unchanged tree is not built again. bin/clusterguard.mjs runs the build
// when dist/cli/build.json's inputs still hash the same, else the sources through tsx.
// Plain JavaScript, so setup (scripts/setup.mjs) can run it before anything is compiled.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** sha256 over the files (relative to `repo`), names and contents. */
export function hashFiles(repo, files) {
  const hash = createHash('sha256');
  for (const f of files) hash.update(`${f}\0`).update(readFileSync(path.join(repo, f)));
  return hash.digest('hex');
}

function sourceFiles(repo, dirs = ['src']) {
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(path.join(repo, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (/\.(ts|mjs|js|json)$/.test(e.name)) out.push(rel);
    }
  };
  for (const d of dirs) walk(d);
  return [...out.sort(), 'package.json', 'package-lock.json', 'scripts/build-cli.mjs'];
}

/**
 * Builds `out` with `builds` (given esbuild, the staging folder and package.json; answers
 * esbuild's results) unless its build.json names the same source `key` and `main` is there.
 * build.json lists the repository's files in the bundle and their hash: what its runner checks
 * at each start. Swapped in whole, so a concurrent call never runs half a build.
 */
function ensureBuild(repo, { out, key, main, force }, builds) {
  try {
    const stamp = JSON.parse(readFileSync(path.join(out, 'build.json'), 'utf8'));
    if (!force && stamp.key === key && existsSync(path.join(out, main))) return 'fresh';
  } catch {
    // not built yet
  }
  const requireFromTsx = createRequire(
    createRequire(path.join(repo, 'package.json')).resolve('tsx/package.json'),
  );
  const esbuild = requireFromTsx('esbuild');
  const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
  const staging = `${out}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const results = builds(esbuild, staging, pkg);
  const inputs = [...new Set(results.flatMap((r) => Object.keys(r.metafile.inputs)))]
    .filter((f) => !f.includes('node_modules'))
    .sort();
  writeFileSync(
    path.join(staging, 'build.json'),
    `${JSON.stringify({ key, inputs, inputsHash: hashFiles(repo, inputs) }, null, 2)}\n`,
  );
  const old = `${out}.old-${process.pid}`;
  if (existsSync(out)) renameSync(out, old);
  renameSync(staging, out);
  rmSync(old, { recursive: true, force: true });
  return 'built';
}

/** What both bundles share: ES modules for Node 20, a real require() for CommonJS code in them. */
const esmBundle = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  banner: {
    js: "import { createRequire as __cgRequire } from 'node:module'; const require = __cgRequire(import.meta.url);",
  },
  metafile: true,
  sourcemap: 'linked',
  logLevel: 'silent',
};

/**
 * Builds dist/cli unless its build.json names the same source hash. Answers what it did:
 * 'fresh' (nothing to do) or 'built'. Throws when esbuild fails.
 */
export function ensureCliBuild(repo = root, { force = false } = {}) {
  const out = path.join(repo, 'dist', 'cli');
  const key = hashFiles(repo, sourceFiles(repo));
  return ensureBuild(
    repo,
    { out, key, main: 'clusterguard.mjs', force },
    (esbuild, staging, pkg) => [
      esbuild.buildSync({
        ...esmBundle,
        absWorkingDir: repo,
        entryPoints: { clusterguard: 'src/cli/main.ts' },
        outdir: staging,
        splitting: true,
        chunkNames: 'chunks/[name]-[hash]',
        // commander is needed for every call, and CommonJS (hence the banner's require).
        external: Object.keys(pkg.dependencies ?? {}).filter((d) => d !== 'commander'),
      }),
    ],
  );
}

/**
 * The node agent (worker/node-agent.ts) compiled into dist/agent/node-agent.mjs the same way:
 * loaded through tsx, an agent spent about 5 CPU-seconds starting, compiled under 2, and the
 * test suite starts about 80 of them. src/dev/processes.ts runs the build only while its
 * build.json inputs hash the same; else the sources through tsx. Answers 'fresh' or 'built'.
 */
export function ensureAgentBuild(repo = root, { force = false } = {}) {
  const out = path.join(repo, 'dist', 'agent');
  const key = hashFiles(repo, sourceFiles(repo, ['src', 'activities', 'worker']));
  return ensureBuild(repo, { out, key, main: 'node-agent.mjs', force }, (esbuild, staging, pkg) => [
    esbuild.buildSync({
      ...esmBundle,
      absWorkingDir: repo,
      entryPoints: { 'node-agent': 'worker/node-agent.ts' },
      outdir: staging,
      external: Object.keys(pkg.dependencies ?? {}),
    }),
    // The worker require()s its failure converter by path (src/client/transport.ts), which an
    // ES module cannot be: a CommonJS copy beside the agent.
    esbuild.buildSync({
      absWorkingDir: repo,
      entryPoints: ['src/client/failure-converter.ts'],
      outfile: path.join(staging, 'failure-converter.cjs'),
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      external: Object.keys(pkg.dependencies ?? {}),
      metafile: true,
      logLevel: 'silent',
    }),
  ]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const what = ensureCliBuild(root, { force: process.argv.includes('--force') });
  console.error(`[build-cli] dist/cli ${what} in ${Date.now() - started} ms`);
  const agent = ensureAgentBuild(root, { force: process.argv.includes('--force') });
  console.error(`[build-cli] dist/agent ${agent} in ${Date.now() - started} ms`);
}
