import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  admissionKindOf,
  admissionKinds,
  compatible,
  decideAdmission,
  type AdmissionHolder,
  type AdmissionKind,
  type AdmissionRequest,
} from '../../src/contracts/admission.js';
import { runbooks } from '../../src/contracts/catalog.js';

const request = (
  runbook: string,
  kind: AdmissionKind,
  extra: Partial<AdmissionRequest> = {},
): AdmissionRequest => ({
  workflowId: `cg/c/${runbook}`,
  runId: 'r',
  runbook,
  kind,
  nodes: ['10.0.0.1', '10.0.0.2'],
  leaving: [],
  wait: false,
  requestedAt: '2026-12-06T00:00:00Z',
  ...extra,
});
const holder = (r: AdmissionRequest): AdmissionHolder => ({ ...r, since: r.requestedAt });

describe('cluster-wide admission table (docs/design.md "Admission")', () => {
  test('is symmetric, and changes run alone', () => {
    for (const a of admissionKinds) {
      for (const b of admissionKinds) {
        assert.equal(compatible[a].includes(b), compatible[b].includes(a), `${a} / ${b}`);
      }
    }
    for (const k of ['membership', 'restore', 'import'] as const)
      assert.deepEqual(compatible[k], []);
    assert.ok(compatible.rollout.includes('backup') && compatible.backup.includes('export'));
  });

  test('every runbook that changes or reads the cluster asks; ping, guardian, schedules do not', () => {
    const asking = Object.keys(admissionKindOf).sort();
    const silent = ['pingCluster', 'clusterGuardian', 'scheduledBackup'];
    assert.deepEqual(
      asking,
      Object.keys(runbooks)
        .filter((n) => !silent.includes(n))
        .sort(),
    );
  });

  test('a restore during a decommission is refused, or queued with waitForCluster', () => {
    const d = holder(request('decommissionNodes', 'membership', { leaving: ['10.0.0.2'] }));
    const refused = decideAdmission('c', request('restoreCluster', 'restore'), [d], []);
    assert.equal(refused.kind, 'refuse');
    assert.equal(refused.kind === 'refuse' && refused.holder.workflowId, d.workflowId);
    const queued = decideAdmission(
      'c',
      request('restoreCluster', 'restore', { wait: true }),
      [d],
      [],
    );
    assert.deepEqual(queued, { kind: 'queue', behind: [d.workflowId] });
  });

  test('a rollout onto a leaving node is refused even when it would wait', () => {
    const d = holder(request('decommissionNodes', 'membership', { leaving: ['10.0.0.2'] }));
    const r = decideAdmission('c', request('rolloutBundle', 'rollout', { wait: true }), [d], []);
    assert.equal(r.kind, 'refuse');
    assert.ok(r.kind === 'refuse' && r.final && /10\.0\.0\.2 is leaving/.test(r.reason));
  });

  test('reads share the cluster; a queued change goes before later reads', () => {
    const b = holder(request('backupCluster', 'backup'));
    assert.deepEqual(decideAdmission('c', request('rolloutBundle', 'rollout'), [b], []), {
      kind: 'grant',
    });
    const waiting = request('importData', 'import', { wait: true });
    const later = decideAdmission('c', request('exportData', 'export'), [b], [waiting]);
    assert.equal(later.kind, 'refuse');
    assert.equal(later.kind === 'refuse' && later.holder.workflowId, waiting.workflowId);
  });
});
