/**
 * Test entry point. `unit` runs the fast suite. `workflow` and `all` first start one real
 * Temporal dev server (headless, in memory, on a free port) for the whole run, hand its address
 * to every test file through CG_TEST_TEMPORAL_ADDRESS, then stop it.
 */
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../src/process.js';
import { freePort, startDevServer, type DevServer } from '../src/temporal/dev-server.js';

const suites: Record<string, string[]> = {
  unit: ['test/unit', 'test/replay'],
  workflow: ['test/integration', 'test/workflow'],
  middleware: ['test/middleware'],
  // Whole stacks (own Temporal server on a SQLite file, agents, ZooKeeper, Kafka) per file.
  e2e: ['test/e2e'],
  all: [
    'test/unit',
    'test/replay',
    'test/integration',
    'test/middleware',
    'test/workflow',
    'test/e2e',
  ],
};

function testFiles(dir: string): string[] {
  const abs = path.join(repoRoot, dir);
  let entries: string[];
  try {
    entries = readdirSync(abs);
  } catch {
    return [];
  }
  return entries.sort().flatMap((name) => {
    const full = path.join(abs, name);
    if (statSync(full).isDirectory()) return testFiles(path.join(dir, name));
    return name.endsWith('.test.ts') ? [path.join(dir, name)] : [];
  });
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  // --checks: the lint and the type check run beside the tests (npm test), not before them.
  const withChecks = argv.includes('--checks');
  const [mode = 'all', filter] = argv.filter((a) => a !== '--checks');
  const dirs = suites[mode];
  if (!dirs) {
    console.error(`usage: test/run.ts ${Object.keys(suites).join('|')} [file filter]`);
    return 2;
  }
  const files = dirs.flatMap(testFiles).filter((f) => !filter || f.includes(filter));
  if (files.length === 0) {
    console.error(`no test files under ${dirs.join(', ')}${filter ? ` matching ${filter}` : ''}`);
    return 1;
  }

  let server: DevServer | undefined;
  const env: Record<string, string> = {
    // Every ZooKeeper, Kafka and Felix of a test lives for minutes at most: the C2 compiler's
    // work never pays back there, and at 2 cores with three lanes it was about 45% of the
    // JVMs' CPU (README, "Development"). Production JVMs keep their defaults.
    JAVA_TOOL_OPTIONS: process.env.JAVA_TOOL_OPTIONS ?? '-XX:TieredStopAtLevel=1',
  };
  // The orchestrators of this run (dozens: stacks, restarts, kills) share their workflow
  // bundles instead of each bundling the same sources (worker/workflow-bundle.ts).
  const bundleCache = await mkdtemp(path.join(os.tmpdir(), 'cg-test-bundles-'));
  env.CG_WORKFLOW_BUNDLE_CACHE = bundleCache;
  if (mode !== 'unit' && mode !== 'middleware' && mode !== 'e2e') {
    const started = Date.now();
    server = await startDevServer({
      binary: process.env.CG_TEMPORAL_BIN ?? path.join(repoRoot, '.tools', 'bin', 'temporal'),
      port: await freePort(),
      headless: true,
    });
    env.CG_TEST_TEMPORAL_ADDRESS = server.address;
    env.CG_TEST_TEMPORAL_NAMESPACE = server.namespace;
    console.error(
      `[test] Temporal dev server at ${server.address} (ready in ${Date.now() - started} ms)`,
    );
  }
  // Side lanes run beside the main one and each prints when it is done, so that the reports
  // do not interleave. CG_TEST_ONE_LANE=1 runs everything in one lane.
  const sides = process.env.CG_TEST_ONE_LANE
    ? []
    : sideLanes.map((lane) => files.filter((f) => lane.includes(f)));
  const main = files.filter((f) => !sides.some((lane) => lane.includes(f)));
  try {
    const lanes = [main, ...sides].filter((l) => l.length > 0);
    const checks = withChecks ? runChecks() : Promise.resolve(0);
    const codes = await Promise.all([
      checks,
      ...lanes.map(async (laneFiles, i) => {
        if (i === 0) return runFiles(laneFiles, env, 'inherit');
        const started = Date.now();
        const out: string[] = [];
        const code = await runFiles(laneFiles, env, 'pipe', (chunk) => out.push(chunk));
        process.stderr.write(
          `\n[test] side lane (${laneFiles.join(', ')}) finished in ` +
            `${Math.round((Date.now() - started) / 1000)} s with exit code ${code}; its report:\n`,
        );
        process.stdout.write(out.join(''));
        return code;
      }),
    ]);
    return codes.find((c) => c !== 0) ?? 0;
  } finally {
    await server?.stop();
    await rm(bundleCache, { recursive: true, force: true });
  }
}

/**
 * The lanes that run beside the main one: long files, mostly waiting on timeouts, restarts and
 * JVM starts rather than on the CPU, each on loopback addresses no other test binds and with its
 * own Temporal server (membership: 127.0.0.31–.35; cockroach-membership: 127.0.0.136–.139;
 * production: 127.0.0.151–.155 with its own PostgreSQL; data-safety: 127.0.0.131–.134; chaos:
 * 127.0.0.141–.144; admission: 127.0.0.181–.182; data-resilience: 127.0.0.241–.244; felix-cluster:
 * 127.0.0.171–.173; guardian-reconcile: 127.0.0.196–.198; self-healing: 127.0.0.191–.193; data:
 * 127.0.0.245–.248).
 * The Kafka-heavy files share one lane: two of them at once on two cores made Kafka time out.
 */
const sideLanes = [
  [
    'test/e2e/membership.test.ts',
    'test/e2e/data-safety.test.ts',
    'test/e2e/chaos.test.ts',
    'test/e2e/production.test.ts',
  ],
  [
    'test/e2e/admission.test.ts',
    'test/e2e/data-resilience.test.ts',
    'test/e2e/felix-cluster.test.ts',
    'test/e2e/self-healing.test.ts',
    'test/e2e/guardian-reconcile.test.ts',
    'test/e2e/bundle-restore.test.ts',
    'test/e2e/cockroach-membership.test.ts',
    'test/e2e/data.test.ts',
  ],
];

/**
 * ESLint with Prettier's check, and tsc, beside the test lanes: each is one single-threaded
 * process, and run before the tests they left a core idle for about two minutes. A failure is
 * printed the moment it happens; the run's exit code says it at the end.
 */
async function runChecks(): Promise<number> {
  const one = async (script: string) => {
    const r = await execa('npm', ['run', '--silent', script], {
      cwd: repoRoot,
      reject: false,
      all: true,
    });
    const code = r.exitCode ?? 1;
    process.stderr.write(
      code === 0
        ? `[test] npm run ${script}: passed\n`
        : `\n[test] npm run ${script} FAILED (exit code ${code}):\n${r.all}\n`,
    );
    return code;
  };
  const codes = await Promise.all([one('lint'), one('typecheck')]);
  return codes.find((c) => c !== 0) ?? 0;
}

async function runFiles(
  files: string[],
  env: Record<string, string>,
  stdio: 'inherit' | 'pipe',
  onOutput?: (chunk: string) => void,
): Promise<number> {
  const args = [
    '--import',
    'tsx',
    '--test',
    // Workflow tests bind the same loopback node addresses: one file at a time per lane.
    '--test-concurrency=1',
    // Per file: the e2e file runs its scenarios in sequence for about 6 minutes.
    '--test-timeout=1200000',
    '--test-reporter=spec',
    ...files,
  ];
  const options = { cwd: repoRoot, reject: false, env } as const;
  if (stdio === 'inherit') {
    return (await execa(process.execPath, args, { ...options, stdio: 'inherit' })).exitCode ?? 1;
  }
  const child = execa(process.execPath, args, { ...options, all: true, buffer: false });
  child.all.on('data', (chunk: Buffer) => onOutput?.(chunk.toString()));
  return (await child).exitCode ?? 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
