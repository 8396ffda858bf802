import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  coarseProgressKey,
  fullStepListLimit,
  nodePhaseMatrix,
  progressMemo,
  renderCurrentDetails,
} from '../../src/contracts/progress-matrix.js';
import type { Progress, ProgressStep, StepStatus } from '../../src/contracts/progress.js';

const nodes = Array.from({ length: 100 }, (_, i) => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`);

/** A 100-node rollout half way: 30 nodes installed and checked, one installing, one failed. */
function rollout(): Progress {
  const steps: ProgressStep[] = [
    { id: 'inspect', title: 'inspect the artifact', status: 'completed', attempts: 1 },
  ];
  nodes.forEach((node, i) => {
    const install: StepStatus =
      i < 30 ? 'completed' : i === 30 ? 'running' : i === 31 ? 'failed' : 'pending';
    const check: StepStatus = i < 30 ? 'completed' : 'pending';
    steps.push({ id: `install:${node}`, title: 'install', node, status: install, attempts: 1 });
    steps.push({ id: `health:${node}`, title: 'check health', node, status: check, attempts: 1 });
  });
  return {
    runbook: 'rolloutBundle',
    clusterId: 'big',
    status: 'running',
    steps,
    updatedAt: '2026-12-06T03:00:00Z',
  };
}

test('one row per node and one column per phase, identical rows grouped, counts on top', () => {
  const matrix = nodePhaseMatrix(rollout().steps);
  assert.deepEqual(matrix.phases, ['inspect', 'install', 'health']);
  assert.deepEqual(matrix.counts, [
    { done: 1, total: 1 },
    { done: 30, total: 100 },
    { done: 30, total: 100 },
  ]);
  assert.deepEqual(
    matrix.rows.map((r) => [r.nodes.length, r.cells]),
    [
      [1, ['completed', undefined, undefined]],
      [30, [undefined, 'completed', 'completed']],
      [1, [undefined, 'running', 'pending']],
      [1, [undefined, 'failed', 'pending']],
      [68, [undefined, 'pending', 'pending']],
    ],
  );
});

test('the details of a 100-node run stay a screen long: matrix, then only the steps in play', () => {
  const md = renderCurrentDetails(rollout());
  const lines = md.split('\n');
  assert.match(lines[0]!, /\*\*rolloutBundle\*\* on cluster `big` — running, 61\/201 steps done/);
  assert.ok(lines.includes('| node | inspect | install | health |'), md);
  assert.ok(lines.includes('| **done** | **1/1** | **30/100** | **30/100** |'), md);
  assert.ok(
    lines.includes(`| ${nodes[0]}, ${nodes[1]} … ${nodes[29]} (30 nodes) |  | ✅ | ✅ |`),
    md,
  );
  assert.ok(
    lines.includes(`| ${nodes[32]}, ${nodes[33]} … ${nodes[99]} (68 nodes) |  | ⏳ | ⏳ |`),
    md,
  );
  // The step table lists the running and the failed step only, and says what it left out.
  assert.equal(lines.filter((l) => l.startsWith('| install |')).length, 2);
  assert.ok(md.includes('199 pending or finished steps not listed'), md);
  assert.ok(lines.length < 30, `${lines.length} lines`);
});

test('a small run lists every step below the matrix', () => {
  const small = { ...rollout(), steps: rollout().steps.slice(0, fullStepListLimit) };
  const md = renderCurrentDetails(small);
  assert.equal(
    md.split('\n').filter((l) => l.startsWith('| install |') || l.startsWith('| check health |'))
      .length,
    fullStepListLimit - 1,
  );
  assert.ok(!md.includes('not listed'));
});

test('the memo keeps the status and the grouped rows; its key moves by tenths of a phase', () => {
  const p = rollout();
  const memo = progressMemo(p);
  assert.equal(memo.status, 'running, 61/201 steps done');
  assert.deepEqual(memo.phases, ['inspect 1/1', 'install 30/100', 'health 30/100']);
  assert.equal((memo.nodes as string[]).length, 5);
  const key = coarseProgressKey(p);
  const one = {
    ...p,
    steps: p.steps.map((s) =>
      s.id === `install:${nodes[30]}` ? { ...s, status: 'completed' as const } : s,
    ),
  };
  assert.equal(coarseProgressKey(one), key, 'one more node of 100 is not a tenth');
  assert.notEqual(coarseProgressKey({ ...p, status: 'failed' }), key);
});
