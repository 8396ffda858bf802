// The runbook catalog (src/contracts/catalog.ts) and the client's checks over it: every
// workflow is declared once, its id rule and Nodes attribute follow its lane, a bad input is
// InvalidInputError naming the field, and failures map to one kind each.
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { described } from '../../src/contracts/message-descriptions.js';
import {
  ClusterBusyError,
  ClusterGuardError,
  InvalidInputError,
  checkRunbookInput,
  failureKind,
  messages,
  runbooks,
  type RunbookName,
} from '../../src/client/index.js';

const ctx = { unique: 'abc123', symbolicName: 'com.example.app', scheduleName: 'nightly' };

describe('the runbook catalog', () => {
  test('declares exactly the workflow types the orchestrator registers', async () => {
    const index = await readFile(new URL('../../workflows/index.ts', import.meta.url), 'utf8');
    // `export { x }` or `export const x = releasing(...)`; clusterAdmission is no runbook but
    // the admission workflow runbooks start themselves (docs/design.md "Admission").
    const registered = [...index.matchAll(/export (?:\{ (\w+) \}|const (\w+) = )/g)]
      .map((m) => m[1] ?? m[2])
      .filter((name) => name !== 'clusterAdmission')
      .sort();
    assert.deepEqual(Object.keys(runbooks).sort(), registered);
    for (const [key, spec] of Object.entries(runbooks)) assert.equal(spec.name, key);
  });

  test('workflow ids follow the lane: one membership, data, guardian run; bundles by name', () => {
    const c = { clusterId: 'dev' };
    const m = { ...c, master: '10.0.0.1' };
    const inputs: Record<RunbookName, object> = {
      pingCluster: { ...c, nodes: ['10.0.0.1'] },
      bootstrapCluster: { ...c, nodes: ['10.0.0.1'] },
      joinNode: { ...c, node: '10.0.0.2' },
      rejoinNode: { ...c, node: '10.0.0.2' },
      decommissionNodes: { ...c, nodes: ['10.0.0.2'] },
      backupCluster: m,
      verifyBackup: { ...m, backupId: '20261122T074512Z' },
      restoreCluster: { ...m, backupId: '20261122T074512Z' },
      exportData: m,
      importData: { ...m, archive: '20261122T074512Z-move' },
      scheduledBackup: m,
      rolloutBundle: { ...m, sha256: 'a'.repeat(64) },
      clusterGuardian: m,
    };
    const ids = Object.fromEntries(
      (Object.keys(runbooks) as RunbookName[]).map((name) => {
        const spec = runbooks[name] as unknown as {
          input: () => { parse(v: unknown): unknown };
          workflowId(p: unknown, c: typeof ctx): string;
        };
        return [name, spec.workflowId(spec.input().parse(inputs[name]), ctx)];
      }),
    );
    assert.deepEqual(ids, {
      pingCluster: 'cg/dev/ping/abc123',
      bootstrapCluster: 'cg/dev/membership',
      joinNode: 'cg/dev/membership',
      rejoinNode: 'cg/dev/membership',
      decommissionNodes: 'cg/dev/membership',
      backupCluster: 'cg/dev/data',
      verifyBackup: 'cg/dev/data',
      restoreCluster: 'cg/dev/data',
      exportData: 'cg/dev/data',
      importData: 'cg/dev/data',
      scheduledBackup: 'cg/dev/scheduled-backup/nightly',
      rolloutBundle: 'cg/dev/bundle/com.example.app',
      clusterGuardian: 'cg/dev/guardian',
    });
  });

  test('the Nodes attribute names the nodes a run works on', () => {
    const decommission = runbooks.decommissionNodes;
    const params = decommission.input().parse({
      clusterId: 'dev',
      nodes: ['10.0.0.3'],
      add: ['10.0.0.4'],
    });
    assert.deepEqual(decommission.nodes(params), ['10.0.0.3', '10.0.0.4']);
    const backup = runbooks.backupCluster;
    assert.deepEqual(backup.nodes(backup.input().parse({ clusterId: 'dev', master: '10.0.0.1' })), [
      '10.0.0.1',
    ]);
    const guardian = runbooks.clusterGuardian;
    assert.deepEqual(
      guardian.nodes(guardian.input().parse({ clusterId: 'dev', master: '10.0.0.1' })),
      ['10.0.0.1'],
    );
  });

  test('a bad input is InvalidInputError naming the runbook and each field', () => {
    assert.throws(
      () => checkRunbookInput('backupCluster', { clusterId: 'Bad Id', master: 'x y', typo: 1 }),
      (err: unknown) =>
        err instanceof InvalidInputError &&
        err instanceof ClusterGuardError &&
        err.type === 'InvalidInput' &&
        /^invalid backupCluster input: /.test(err.message) &&
        /clusterId/.test(err.message) &&
        /master/.test(err.message) &&
        /typo/.test(err.message),
    );
  });

  test('message definitions keep their wire names', () => {
    assert.deepEqual(
      Object.values(messages)
        .map((d) => d.name)
        .sort(),
      [
        'abort',
        'approve',
        'bundles',
        'pause',
        'progress',
        'reconcile',
        'resume',
        'retryStep',
        'setMembership',
        'skipNode',
        'state',
      ],
    );
  });

  test('every signal, query and update has a description for the Web UI', () => {
    for (const d of Object.values(messages)) {
      assert.ok(described(d).description.length > 20, d.name);
    }
  });

  test('every failure has one kind', () => {
    assert.equal(failureKind(new ClusterBusyError('busy')), 'ClusterBusy');
    assert.equal(failureKind(new InvalidInputError('bad')), 'InvalidInput');
    assert.equal(
      failureKind(new WorkflowExecutionAlreadyStartedError('started', 'cg/dev/data', 'x')),
      'ClusterBusy',
    );
    assert.equal(failureKind(Object.assign(new Error('down'), { code: 14 })), 'Unavailable');
    assert.equal(failureKind(new Error('?')), 'Error');
  });
});
