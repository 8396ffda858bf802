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
 * Builds dist/cli unless its build.json names the same source hash. Answers what it did:
 * 'fresh' (nothing to do) or 'built'. Throws when esbuild fails.
 */
export function ensureCliBuild(repo = root, { force = false } = {}) {
  const out = path.join(repo, 'dist', 'cli');
  const key = hashFiles(repo, sourceFiles(repo));
  try {
    const stamp = JSON.parse(readFileSync(path.join(out, 'build.json'), 'utf8'));
    if (!force && stamp.key === key && existsSync(path.join(out, 'clusterguard.mjs'))) {
      return 'fresh';
    }
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
  const result = esbuild.buildSync({
    absWorkingDir: repo,
    entryPoints: { clusterguard: 'src/cli/main.ts' },
    outdir: staging,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    external: Object.keys(pkg.dependencies ?? {}).filter((d) => d !== 'commander'),
    // commander is CommonJS: its require() of Node's modules needs a real require in ESM.
    banner: {
      js: "import { createRequire as __cgRequire } from 'node:module'; const require = __cgRequire(import.meta.url);",
    },
    metafile: true,
    sourcemap: 'linked',
    logLevel: 'silent',
  });
  // The files of this repository in the bundle: what bin/clusterguard.mjs checks at each call.
  // The worker require()s its failure converter by path (src/client/transport.ts), which an
  // ES module cannot be: a CommonJS copy beside the agent.
  const converter = esbuild.buildSync({
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
  });
  const inputs = [
    ...new Set([...Object.keys(result.metafile.inputs), ...Object.keys(converter.metafile.inputs)]),
  ]
    .filter((f) => !f.includes('node_modules'))
    .sort();
  writeFileSync(
    path.join(staging, 'build.json'),
    `${JSON.stringify({ key, inputs, inputsHash: hashFiles(repo, inputs) }, null, 2)}\n`,
  );
  // Swapped in whole, so a concurrent call never runs half a build.
  const old = `${out}.old-${process.pid}`;
  if (existsSync(out)) renameSync(out, old);
  renameSync(staging, out);
  rmSync(old, { recursive: true, force: true });
  return 'built';
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
  try {
    const stamp = JSON.parse(readFileSync(path.join(out, 'build.json'), 'utf8'));
    if (!force && stamp.key === key && existsSync(path.join(out, 'node-agent.mjs'))) return 'fresh';
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
  const result = esbuild.buildSync({
    absWorkingDir: repo,
    entryPoints: { 'node-agent': 'worker/node-agent.ts' },
    outdir: staging,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    external: Object.keys(pkg.dependencies ?? {}),
    banner: {
      js: "import { createRequire as __cgRequire } from 'node:module'; const require = __cgRequire(import.meta.url);",
    },
    metafile: true,
    sourcemap: 'linked',
    logLevel: 'silent',
  });
  // The worker require()s its failure converter by path (src/client/transport.ts), which an
  // ES module cannot be: a CommonJS copy beside the agent.
  const converter = esbuild.buildSync({
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
  });
  const inputs = [
    ...new Set([...Object.keys(result.metafile.inputs), ...Object.keys(converter.metafile.inputs)]),
  ]
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

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const what = ensureCliBuild(root, { force: process.argv.includes('--force') });
  console.error(`[build-cli] dist/cli ${what} in ${Date.now() - started} ms`);
  const agent = ensureAgentBuild(root, { force: process.argv.includes('--force') });
  console.error(`[build-cli] dist/agent ${agent} in ${Date.now() - started} ms`);
}
