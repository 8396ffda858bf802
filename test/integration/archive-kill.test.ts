import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityInterceptors } from '../../activities/interceptor.js';
import { DefaultLogger } from '@temporalio/worker';
import { execa } from 'execa';
import { createDataActivities } from '../../activities/data-activities.js';
import { NodeLayout } from '../../src/config/layout.js';
import { repoRoot } from '../../src/process.js';

/**
 * An agent killed (SIGKILL) while it writes an archive: the archive is written to a hidden temp
 * file and renamed only when complete, so what is left is no archive that looks valid — nothing
 * under the backup's name, nothing that listArchives or verifyArchive would take for a backup —
 * and retention sweeps the leftover once it is stale.
 */
describe('an agent killed during archive creation', () => {
  let dir: string;
  let layout: NodeLayout;
  const backupId = '20261122T074512Z-killed';

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-kill-'));
    layout = new NodeLayout(path.join(dir, 'root'));
    await layout.ensureAll();
    // Incompressible data, enough that hashing and zipping take a few seconds.
    const folder = path.join(layout.workingFolder('backup', 'controller'), 'etc-0');
    await mkdir(folder, { recursive: true });
    for (let i = 0; i < 24; i++) {
      await writeFile(path.join(folder, `blob-${i}.bin`), randomBytes(4 * 1024 * 1024));
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('leaves no half-written archive that looks valid; the leftover is swept', async () => {
    const archives = layout.archiveFolder('backup');
    const child = execa(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(repoRoot, 'test/fixtures/archive-child.ts'),
        layout.root,
        backupId,
      ],
      { cwd: repoRoot, reject: false },
    );
    // Kill it once the temp archive has bytes in it: mid-write, not before or after.
    const deadline = Date.now() + 60_000;
    let partial: string | undefined;
    while (!partial && Date.now() < deadline) {
      for (const name of await readdir(archives)) {
        const size = (await stat(path.join(archives, name)).catch(() => undefined))?.size ?? 0;
        if (name.startsWith('.') && size > 0) partial = name;
      }
      if (!partial) await sleep(20);
    }
    child.kill('SIGKILL');
    const exit = await child;
    assert.ok(partial, `no temp archive appeared; child said: ${exit.stdout} ${exit.stderr}`);
    assert.equal(exit.signal, 'SIGKILL', 'the child was killed, not finished');
    assert.doesNotMatch(exit.stdout, /archived/);

    const left = await readdir(archives);
    assert.ok(
      !left.includes(`${backupId}.zip`),
      `no archive under the backup's name: ${left.join(', ')}`,
    );
    assert.ok(
      left.every((n) => n.startsWith('.')),
      `only hidden leftovers: ${left.join(', ')}`,
    );

    const acts = createDataActivities({
      address: '127.0.0.21',
      layout,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      staleAfterMs: 0,
    });
    const env = new MockActivityEnvironment(undefined, {
      logger: new DefaultLogger('ERROR'),
      interceptors: activityInterceptors(),
    });
    const run = <R>(fn: () => Promise<R>): Promise<R> => env.run(fn);
    const listed = await run(() => acts.listArchives({ op: 'backup' }));
    assert.deepEqual(listed.archives, []);
    await assert.rejects(
      run(() => acts.verifyArchive({ op: 'backup', backupId })),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === 'InvalidInput' &&
        /has no archive of backup 20261122T074512Z-killed/.test(err.message),
    );
    const pruned = await run(() => acts.pruneArchives({ op: 'backup', keep: 1, protect: [] }));
    assert.deepEqual(
      pruned.swept,
      left.map((n) => path.join(archives, n)),
    );
    assert.deepEqual(await readdir(archives), []);
  });
});
