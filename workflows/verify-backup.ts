import { ApplicationFailure } from '@temporalio/workflow';
import {
  evaluateBackup,
  type VerifyBackupInput,
  type VerifyBackupResult,
} from '../src/contracts/data-runbooks.js';
import { checkArchiveStep, dataCalls } from './lib/data.js';
import { openDataRunbook } from './lib/open.js';

/**
 * Re-reads every member's archive of a backup and checks it against its manifest: each file's
 * size and sha256, nothing missing or extra, every node of the backup answering with its part,
 * all parts from the same run. Read-only. A backup that is not whole fails the runbook, with
 * every problem named; a whole one returns which nodes hold which part.
 */
export async function verifyBackup(rawInput: VerifyBackupInput): Promise<VerifyBackupResult> {
  const { input, ctx, rb, clusterId, master, members } = await openDataRunbook(
    'verifyBackup',
    rawInput,
  );
  const { backupId } = input;
  rb.eventNodes = members;
  rb.tracker.addSteps(
    members.map((n) => ({
      id: `check:${n}`,
      title: `find and verify its archive of ${backupId}`,
      node: n,
    })),
  );

  await rb.emit('runbook.started', { backupId, members });
  try {
    const checks = await Promise.all(
      members.map((n) => checkArchiveStep(ctx, n, 'backup', backupId)),
    );
    const { problems, manifest } = evaluateBackup(clusterId, backupId, checks);
    if (problems.length || !manifest) {
      throw ApplicationFailure.nonRetryable(
        `backup ${backupId} of cluster ${clusterId} is not whole: ${problems.join('; ')}`,
        'UnsafeArchive',
      );
    }
    // The node holding the replicated data (the master when it was taken) reads its dumps back.
    const tested = manifest.archives[0];
    const restoreTest =
      input.restoreTest && tested
        ? await rb.step(
            `restore-test:${tested.node}`,
            {
              title: `read every dump of ${backupId} back, in a scratch folder`,
              node: tested.node,
            },
            () =>
              dataCalls(ctx, tested.node, 'restoreTest').restoreTest({
                op: 'backup',
                backupId,
                sha256: checks.find((c) => c.node === tested.node)?.archive?.sha256 ?? '',
              }),
          )
        : undefined;
    rb.tracker.finish('completed');
    await rb.emit('runbook.completed', {
      backupId,
      nodes: checks.filter((c) => c.present).map((c) => c.node),
    });
    return {
      runbook: 'verifyBackup',
      clusterId,
      backupId,
      master,
      members,
      backup: {
        members: manifest.members,
        createdAt: manifest.createdAt,
        workflowId: manifest.workflowId,
        plan: manifest.archives,
      },
      nodes: checks.map((c) => {
        const a = c.archive;
        if (!a) return { node: c.node, present: c.present };
        return {
          node: c.node,
          present: true,
          archive: {
            node: a.node,
            file: a.file,
            bytes: a.bytes,
            sha256: a.sha256,
            entries: a.entries,
            files: a.files,
            dataBytes: a.dataBytes,
          },
        };
      }),
      ...(restoreTest ? { restoreTest } : {}),
    };
  } catch (err) {
    rb.tracker.finish('failed');
    await rb.emit('runbook.failed', { backupId, error: (err as Error).message });
    throw err;
  }
}
