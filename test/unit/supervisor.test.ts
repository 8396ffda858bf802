import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import {
  assignMemberIds,
  runningPid,
  startProcess,
  stopProcess,
  type ProcessSpec,
} from '../../src/middleware/kit/index.js';
import { freePort } from '../../src/temporal/dev-server.js';

/** A tiny server: logs, then listens on the port in argv[2] (or never, or crashes). */
const serverScript = `
const [mode, port] = process.argv.slice(2);
console.log('booting in mode ' + mode);
if (mode === 'crash') { console.error('FATAL: cannot bind'); process.exit(3); }
if (mode === 'stubborn') process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
if (mode === 'silent') { setInterval(() => {}, 1000); }
// The readiness probe hangs up at once: a reset on the answer must not crash the server.
else require('net').createServer((s) => { s.on('error', () => {}); s.end('ok'); }).listen(Number(port), '127.0.0.1', () => console.log('server started'));
`;

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('process supervisor (real child processes)', () => {
  let dir: string;
  let script: string;
  const specs: ProcessSpec[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-supervisor-'));
    script = path.join(dir, 'server.cjs');
    await writeFile(script, serverScript);
  });
  after(async () => {
    for (const s of specs) await stopProcess(s, { graceMs: 100, force: true });
    await rm(dir, { recursive: true, force: true });
  });

  let n = 0;
  function spec(mode: string, port = 0): ProcessSpec {
    const name = `srv${++n}`;
    const s: ProcessSpec = {
      name: `${name} on test`,
      command: process.execPath,
      args: [script, mode, String(port), `--marker=${name}-${dir}`],
      pidFile: path.join(dir, `${name}.pid`),
      logFile: path.join(dir, 'log', `${name}.log`),
      marker: `--marker=${name}-${dir}`,
    };
    specs.push(s);
    return s;
  }

  test('starts a server, waits for its success line and readiness, logs to its file', async () => {
    const port = await freePort();
    const s = spec('ok', port);
    const { pid, alreadyRunning } = await startProcess(s, {
      timeoutMs: 10_000,
      successFilter: /server started/,
      failFilter: /FATAL/,
      ready: () => portAnswers(port),
    });
    assert.equal(alreadyRunning, false);
    assert.equal(await runningPid(s), pid);
    assert.equal(Number((await readFile(s.pidFile, 'utf8')).trim()), pid);
    assert.match(await readFile(s.logFile, 'utf8'), /booting in mode ok[\s\S]*server started/);

    const again = await startProcess(s, { timeoutMs: 5000, ready: () => portAnswers(port) });
    assert.deepEqual(again, { pid, alreadyRunning: true }, 'no second server');

    assert.deepEqual(await stopProcess(s, { graceMs: 5000 }), { wasRunning: true });
    assert.equal(await runningPid(s), undefined);
    assert.equal(await portAnswers(port), false);
    assert.deepEqual(await stopProcess(s, { graceMs: 5000 }), { wasRunning: false });
  });

  test('a crash during start fails with the log tail and leaves no pid file', async () => {
    const s = spec('crash');
    await assert.rejects(
      startProcess(s, { timeoutMs: 10_000, successFilter: /server started/, failFilter: /FATAL/ }),
      (err: unknown) =>
        err instanceof ClusterGuardError &&
        err.type === 'MiddlewareFailure' &&
        /failed to start: its log matched \/FATAL\//.test(err.message) &&
        /cannot bind/.test(err.message),
    );
    assert.equal(await runningPid(s), undefined);
  });

  test('an exit without a fail-filter match is reported as an exit during start-up', async () => {
    const s = spec('crash');
    await assert.rejects(
      startProcess(s, { timeoutMs: 10_000, successFilter: /server started/ }),
      /exited during start-up/,
    );
  });

  test('a server that never becomes ready times out and is stopped', async () => {
    const s = spec('silent');
    await assert.rejects(
      startProcess(s, { timeoutMs: 1500, successFilter: /server started/ }),
      /did not become ready within 2 s \(its log never matched/,
    );
    assert.equal(await runningPid(s), undefined);
  });

  test('a server that ignores SIGTERM is killed after the grace period', async () => {
    const port = await freePort();
    const s = spec('stubborn', port);
    await startProcess(s, { timeoutMs: 10_000, ready: () => portAnswers(port) });
    const started = Date.now();
    assert.deepEqual(await stopProcess(s, { graceMs: 800 }), { wasRunning: true });
    assert.ok(Date.now() - started >= 700, 'waited for the grace period first');
    assert.equal(await portAnswers(port), false);
  });

  test('a pid file naming an unrelated process is treated as stale', async () => {
    const s = spec('ok');
    await writeFile(s.pidFile, `${process.pid}\n`);
    assert.equal(await runningPid(s), undefined, 'this test process does not carry the marker');
    await assert.rejects(readFile(s.pidFile), /ENOENT/);
  });

  test('a missing binary is a MissingBinary error', async () => {
    const s = { ...spec('ok'), command: path.join(dir, 'no-such-binary') };
    await assert.rejects(
      startProcess(s, { timeoutMs: 1000 }),
      (err: unknown) => err instanceof ClusterGuardError && err.type === 'MissingBinary',
    );
  });
});

describe('member ids', () => {
  test('new members get the next ids; survivors keep theirs; departed ids are not reused', () => {
    const first = assignMemberIds(['a', 'b', 'c']);
    assert.deepEqual(first, { a: 1, b: 2, c: 3 });
    const replaced = assignMemberIds(['a', 'c', 'd'], first);
    assert.deepEqual(replaced, { a: 1, c: 3, d: 4 });
    const regrown = assignMemberIds(['a', 'c', 'd', 'b'], replaced);
    assert.equal(regrown.b, 5, 'a returning member is a new member to the ensemble');
  });
});
