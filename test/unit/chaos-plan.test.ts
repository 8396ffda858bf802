import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Campaign } from '../chaos/context.js';
import { Rng } from '../chaos/rng.js';
import { nextRunbook, rolloutPlan, type RunbookMemory } from '../chaos/runbooks.js';
import type { GreeterBundles } from '../helpers/felix-bundles.js';
import type { Stack } from '../helpers/stack.js';

const addresses = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];

function campaign(): Campaign {
  return {
    stack: undefined as unknown as Stack,
    clusterId: 'chaos',
    addresses,
    members: addresses.slice(0, 3),
    supervised: true,
    membershipInFlight: false,
    middlewareDown: false,
    killsDone: false,
    aborted: false,
    started: 0,
    log: () => undefined,
    bundles: {} as GreeterBundles,
  };
}

/** The runbook types and inputs (a rollout's input uploads a jar: only its label) of a run. */
function sequence(seed: number, steps: number): string[] {
  const c = campaign();
  const rng = new Rng(seed);
  const memory: RunbookMemory = { rollouts: 0 };
  const seen: string[] = [];
  for (let i = 0; i < steps; i++) {
    const plan = nextRunbook(c, rng, memory);
    seen.push(`${plan.type} ${plan.label}`);
    if (plan.expectRefusal) continue;
    plan.onCompleted?.({ backupId: `b${i}` });
  }
  return seen;
}

test('a seed replays the same sequence of runbooks; another seed another one', () => {
  assert.deepEqual(sequence(1234, 200), sequence(1234, 200));
  assert.notDeepEqual(sequence(1234, 200), sequence(4321, 200));
});

test('the runbooks chosen keep the cluster valid: 3–4 members, the master stays, verify only a backup of the members', () => {
  const c = campaign();
  const rng = new Rng(7);
  const memory: RunbookMemory = { rollouts: 0 };
  const types = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const plan = nextRunbook(c, rng, memory);
    types.add(plan.expectRefusal ? 'refusal' : plan.type);
    if (plan.type === 'verifyBackup')
      assert.deepEqual(
        memory.lastBackup?.members,
        c.members,
        'verify of a backup of other members',
      );
    if (plan.type === 'decommissionNodes')
      assert.equal(
        plan.expectRefusal,
        c.members.length === 3,
        'a refusal is expected exactly at three',
      );
    if (plan.type === 'joinNode') assert.equal(c.members.length, 3, 'a join needs a spare node');
    if (!plan.expectRefusal) plan.onCompleted?.({ backupId: `b${i}` });
    assert.ok(c.members.length >= 3 && c.members.length <= 4, `members ${c.members.join(', ')}`);
    assert.equal(c.members[0], addresses[0], 'the master stays a member and first');
  }
  assert.deepEqual([...types].sort(), [
    'backupCluster',
    'bootstrapCluster',
    'decommissionNodes',
    'joinNode',
    'refusal',
    'rejoinNode',
    'rolloutBundle',
    'verifyBackup',
  ]);
});

test('the rollouts install the application in order, then swap the provider back and forth', () => {
  const c = campaign();
  const memory: RunbookMemory = { rollouts: 0 };
  const plans = Array.from({ length: 6 }, () => rolloutPlan(c, memory, 0.5));
  assert.deepEqual(
    plans.map((p) => [p.workflowId, p.label]),
    [
      ['cg/chaos/bundle/com.example.greeter.api', 'com.example.greeter.api 1.0.0'],
      ['cg/chaos/bundle/com.example.greeter.provider', 'com.example.greeter.provider 1.0.0'],
      ['cg/chaos/bundle/com.example.greeter.consumer', 'com.example.greeter.consumer 1.0.0'],
      ['cg/chaos/bundle/com.example.greeter.provider', 'com.example.greeter.provider 1.1.0'],
      ['cg/chaos/bundle/com.example.greeter.provider', 'com.example.greeter.provider 1.0.0'],
      ['cg/chaos/bundle/com.example.greeter.provider', 'com.example.greeter.provider 1.1.0'],
    ],
  );
});

test('Rng draws floats in [0, 1) and picks by weight', () => {
  const rng = new Rng(99);
  const counts = { a: 0, b: 0, never: 0 };
  for (let i = 0; i < 10_000; i++) {
    const x = rng.next();
    assert.ok(x >= 0 && x < 1);
    counts[
      rng.weighted<'a' | 'b' | 'never'>([
        ['a', 3],
        ['b', 1],
        ['never', 0],
      ])
    ]++;
  }
  assert.equal(counts.never, 0);
  assert.ok(counts.a > 2 * counts.b, JSON.stringify(counts));
});
