#!/usr/bin/env node
// Idempotent tools setup, run by `npm start` and `npm test` on any checkout:
//   1. `npm ci` when node_modules is missing or older than package-lock.json;
//      then the compiled `clusterguard` CLI in dist/cli when its sources changed;
//   2. the Temporal CLI: `.tools/bin/temporal` linked to a binary found in the per-user tools
//      cache, else on PATH, else built into the cache with `go install`.
// The cache (default ~/.cache/clusterguard/tools, or $CLUSTERGUARD_TOOLS_DIR) outlives clones,
// so a fresh clone on a machine that built the tools once skips the build.
// Plain JavaScript on purpose: it must run before dependencies (tsx) are installed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  writeFileSync,
  rmSync,
  symlinkSync,
  lstatSync,
  readlinkSync,
  renameSync,
} from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const log = (msg) => {
  if (!quiet) console.error(`[setup] ${msg}`);
};

/** Temporal CLI tags that `go install` can build, best first (later tags carry a replace directive). */
const temporalTags = ['v1.5.1', 'v1.4.1', 'v1.3.0'];

export const toolsCache = process.env.CLUSTERGUARD_TOOLS_DIR
  ? path.resolve(process.env.CLUSTERGUARD_TOOLS_DIR)
  : path.join(homedir(), '.cache', 'clusterguard', 'tools');
const localTools = path.join(repo, '.tools');

function fail(message) {
  console.error(`\n[setup] ERROR: ${message}\n`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { stdio: quiet ? 'ignore' : 'inherit', ...opts });
}

function ensureNodeModules() {
  const lock = path.join(repo, 'package-lock.json');
  if (!existsSync(lock)) fail('package-lock.json is missing; this checkout is incomplete.');
  const lockHash = createHash('sha256').update(readFileSync(lock)).digest('hex');
  const stamp = path.join(repo, 'node_modules', '.clusterguard-lock-sha256');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === lockHash) return;
  log(
    existsSync(path.join(repo, 'node_modules'))
      ? 'node_modules is stale: npm ci'
      : 'installing dependencies: npm ci',
  );
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const res = run(npm, ['ci', '--no-audit', '--no-fund'], {
    cwd: repo,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.status !== 0)
    fail('`npm ci` failed (see above). Check that the npm registry is reachable.');
  writeFileSync(stamp, `${lockHash}\n`);
}

function which(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate) && !candidate.startsWith(localTools)) return candidate;
  }
  return undefined;
}

function works(binary) {
  const res = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return res.status === 0 && /temporal version/.test(res.stdout);
}

function link(target, linkPath) {
  mkdirSync(path.dirname(linkPath), { recursive: true });
  try {
    if (lstatSync(linkPath).isSymbolicLink() && readlinkSync(linkPath) === target) return;
    rmSync(linkPath, { force: true });
  } catch {
    // nothing there yet
  }
  symlinkSync(target, linkPath);
}

function buildTemporal(cacheBin) {
  const go = which('go');
  if (!go) {
    fail(
      'the Temporal CLI was not found and cannot be built: install Go >= 1.25 (https://go.dev/dl, or ' +
        '`apt-get install golang`), or put a `temporal` binary (CLI >= 1.3) on PATH or in ' +
        `${path.join(cacheBin, 'temporal')}, then run this again.`,
    );
  }
  mkdirSync(cacheBin, { recursive: true });
  for (const tag of temporalTags) {
    log(`building the Temporal CLI ${tag} with go install (a few minutes, once per machine)…`);
    const staging = path.join(toolsCache, `.build-${process.pid}`);
    const res = run(go, ['install', `github.com/temporalio/cli/cmd/temporal@${tag}`], {
      env: { ...process.env, GOBIN: staging, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const built = path.join(staging, 'temporal');
    if (res.status === 0 && existsSync(built)) {
      // Rename into place so a concurrent or interrupted build never leaves a half-written binary.
      renameSync(built, path.join(cacheBin, 'temporal'));
      writeFileSync(path.join(cacheBin, 'temporal.version'), `${tag}\n`);
      rmSync(staging, { recursive: true, force: true });
      return;
    }
    rmSync(staging, { recursive: true, force: true });
    log(`Temporal CLI ${tag} did not build; trying the next tag`);
  }
  fail(`none of the Temporal CLI tags ${temporalTags.join(', ')} could be built with ${go}.`);
}

function ensureTemporal() {
  const cacheBin = path.join(toolsCache, 'bin');
  const cached = path.join(cacheBin, 'temporal');
  const local = path.join(localTools, 'bin', 'temporal');
  if (!works(cached)) {
    const onPath = which('temporal');
    if (onPath && works(onPath)) {
      log(`using the Temporal CLI on PATH: ${onPath}`);
      link(onPath, local);
      return;
    }
    buildTemporal(cacheBin);
    if (!works(cached)) fail(`the Temporal CLI at ${cached} does not run.`);
  }
  link(cached, local);
}

/** Middleware run from Maven Central jars on this machine's Java: name, version, lib folder name. */
const jarTools = [
  { name: 'zookeeper', version: '3.9.3', libs: 'lib' },
  { name: 'kafka', version: '3.9.1', libs: 'libs' },
  // Every jar is a bundle the node's framework starts; their own poms' dependencies are not.
  { name: 'felix', version: '7.0.5', libs: 'bundle', direct: true },
];

function ensureJars({ name, version, libs, direct = false }) {
  const pom = path.join(repo, 'scripts', 'tools', `${name}.pom.xml`);
  // Keyed by the pom's content: a changed jar set is fetched anew even where an old cache exists.
  const pomHash = createHash('sha256').update(readFileSync(pom)).digest('hex').slice(0, 10);
  const home = path.join(toolsCache, `${name}-${version}-${pomHash}`);
  const complete = path.join(home, '.complete');
  if (!existsSync(complete)) {
    const mvn = which('mvn');
    const java = which('java');
    if (!mvn || !java) {
      fail(
        `${name} ${version} runs from Maven Central jars: install Java 17 and Maven ` +
          '(`apt-get install openjdk-17-jre-headless maven`), then run this again.',
      );
    }
    log(`fetching ${name} ${version} jars from Maven Central (once per machine)…`);
    const staging = `${home}.partial-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    const res = run(
      mvn,
      [
        '-q',
        '-B',
        '-f',
        pom,
        'dependency:copy-dependencies',
        '-DincludeScope=runtime',
        ...(direct ? ['-DexcludeTransitive=true'] : []),
        `-DoutputDirectory=${path.join(staging, libs)}`,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (res.status !== 0) {
      rmSync(staging, { recursive: true, force: true });
      fail(
        `Maven could not fetch the ${name} ${version} jars (see above); check that Maven Central is reachable.`,
      );
    }
    writeFileSync(path.join(staging, '.complete'), `${version}\n`);
    rmSync(home, { recursive: true, force: true });
    renameSync(staging, home);
  }
  link(home, path.join(localTools, name));
}

/**
 * `--browser` (what `npm test` asks for): the Debian packages the tests run, installed with
 * apt-get when missing (as root, once per machine), else a clear instruction: Chromium for the
 * Web UI browser test, Prometheus for `promtool` (the alert rules' unit test).
 */
function ensureTestPackages() {
  const chromium = process.env.CG_CHROMIUM ?? '/usr/bin/chromium';
  const wanted = [
    { pkg: 'chromium', present: () => existsSync(chromium), why: 'the Web UI browser test' },
    {
      pkg: 'prometheus',
      present: () => Boolean(which('promtool')),
      why: 'promtool, for the alert rules test',
    },
  ].filter((w) => !w.present());
  if (wanted.length === 0) return;
  const names = wanted.map((w) => w.pkg).join(' ');
  const apt = which('apt-get');
  if (!apt || process.getuid?.() !== 0) {
    fail(
      `the tests need ${wanted.map((w) => `${w.pkg} (${w.why})`).join(' and ')}: apt-get install ${names}` +
        (wanted.some((w) => w.pkg === 'chromium') ? ', or set CG_CHROMIUM.' : '.'),
    );
  }
  log(
    `installing ${names} with apt-get (for ${wanted.map((w) => w.why).join(' and ')}, once per machine)…`,
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run(apt, ['update', '-qq'], { env });
  const res = run(
    apt,
    ['install', '-y', '-qq', '--no-install-recommends', ...wanted.map((w) => w.pkg)],
    {
      env,
    },
  );
  const missing = wanted.filter((w) => !w.present());
  if (res.status !== 0 || missing.length > 0)
    fail(`apt-get install ${missing.map((w) => w.pkg).join(' ') || names} failed (see above).`);
}

/**
 * Builds a Maven project of this repository (e.g. the Felix management bundle) into the cache,
 * keyed by a hash of its sources: a changed source rebuilds, an unchanged one is reused.
 */
export function ensureJavaBuild(name, { jar, linkAs }) {
  const project = path.join(repo, 'java', name);
  const hash = createHash('sha256');
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      if (entry.name === 'target') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else hash.update(`${path.relative(project, full)}\0`).update(readFileSync(full));
    }
  };
  walk(project);
  const home = path.join(toolsCache, `${name}-${hash.digest('hex').slice(0, 10)}`);
  if (!existsSync(path.join(home, '.complete'))) {
    const mvn = which('mvn');
    if (!mvn) fail(`${name} is built with Maven: install Java 17 and Maven, then run this again.`);
    log(`building ${name} with Maven…`);
    const staging = `${home}.partial-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    // Built outside the checkout so that a read-only or shared checkout stays clean.
    const res = run(mvn, [
      '-q',
      '-B',
      '-f',
      path.join(project, 'pom.xml'),
      `-DbuildDirectory=${path.join(staging, 'target')}`,
      'package',
    ]);
    const built = path.join(staging, 'target', jar);
    if (res.status !== 0 || !existsSync(built)) {
      rmSync(staging, { recursive: true, force: true });
      fail(`Maven could not build ${name} (see above).`);
    }
    renameSync(built, path.join(staging, jar));
    // Dependencies copied by the project (maven-dependency-plugin) go beside the jar.
    const lib = path.join(staging, 'target', 'lib');
    if (existsSync(lib)) renameSync(lib, path.join(staging, 'lib'));
    rmSync(path.join(staging, 'target'), { recursive: true, force: true });
    writeFileSync(path.join(staging, '.complete'), `${name}\n`);
    rmSync(home, { recursive: true, force: true });
    renameSync(staging, home);
  }
  link(home, path.join(localTools, linkAs));
  return home;
}

const started = Date.now();
if (!process.argv.includes('--tools-only')) {
  ensureNodeModules();
  // The compiled CLI (dist/cli), rebuilt only when its sources changed (scripts/build-cli.mjs).
  const { ensureAgentBuild, ensureCliBuild } = await import('./build-cli.mjs');
  if (ensureCliBuild(repo) === 'built') log('built the clusterguard CLI into dist/cli');
  if (ensureAgentBuild(repo) === 'built') log('built the node agent into dist/agent');
}
ensureTemporal();
if (!process.argv.includes('--no-jars')) {
  jarTools.forEach(ensureJars);
  ensureJavaBuild('cg-felix-agent', { jar: 'cg-felix-agent.jar', linkAs: 'cg-felix-agent' });
  // The Temporal Java SDK example of docs/api.md, run by test/workflow/java-client.test.ts.
  ensureJavaBuild('cg-client-example', {
    jar: 'cg-client-example.jar',
    linkAs: 'cg-client-example',
  });
}
if (process.argv.includes('--browser')) ensureTestPackages();
log(`tools ready in ${((Date.now() - started) / 1000).toFixed(1)} s (cache: ${toolsCache})`);
