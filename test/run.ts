/**
 * Test entry point. `unit` runs the fast suite. `workflow` and `all` first start one real
 * Temporal dev server (headless, in memory, on a free port) for the whole run, hand its address
 * to every test file through CG_TEST_TEMPORAL_ADDRESS, then stop it.
 */
import { readdirSync, statSync } from 'node:fs';
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
  const mode = process.argv[2] ?? 'all';
  const dirs = suites[mode];
  if (!dirs) {
    console.error(`usage: test/run.ts ${Object.keys(suites).join('|')} [file filter]`);
    return 2;
  }
  const filter = process.argv[3];
  const files = dirs.flatMap(testFiles).filter((f) => !filter || f.includes(filter));
  if (files.length === 0) {
    console.error(`no test files under ${dirs.join(', ')}${filter ? ` matching ${filter}` : ''}`);
    return 1;
  }

  let server: DevServer | undefined;
  const env: Record<string, string> = {};
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
  try {
    const result = await execa(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        // Workflow tests bind the same loopback node addresses: one file at a time.
        '--test-concurrency=1',
        // Per file: the e2e file runs its scenarios in sequence for about 6 minutes.
        '--test-timeout=1200000',
        '--test-reporter=spec',
        ...files,
      ],
      { cwd: repoRoot, stdio: 'inherit', reject: false, env },
    );
    return result.exitCode ?? 1;
  } finally {
    await server?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
