// node:test's describe/test return promises that the runner itself awaits and reports.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import {
  assertSafePlan,
  findUnsafeStep,
  isSafeStep,
  membershipPlanSchema,
  planMembership,
  quorumSize,
  type MembershipPlan,
} from '../../src/contracts/membership.js';

// Addresses in the old service's style (docs/design.md).
const a = '172.18.135.11';
const b = '172.18.135.12';
const c = '172.18.135.13';
const d = '172.18.135.14';
const e = '172.18.135.15';
const f = '172.18.135.16';

function refusedAsUnsafe(...fragments: string[]) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ClusterGuardError, `expected ClusterGuardError: ${String(error)}`);
    assert.equal(error.type, 'UnsafeMembershipChange');
    for (const s of fragments)
      assert.ok(error.message.includes(s), `"${s}" not in: ${error.message}`);
    return true;
  };
}

function refusedAsInvalid(...fragments: string[]) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ClusterGuardError, `expected ClusterGuardError: ${String(error)}`);
    assert.equal(error.type, 'InvalidInput');
    for (const s of fragments)
      assert.ok(error.message.includes(s), `"${s}" not in: ${error.message}`);
    return true;
  };
}

function summary(plan: MembershipPlan): string[] {
  return plan.steps.map((s) => `${s.action} ${s.nodes.join(',')} -> ${s.membersAfter.length}`);
}

describe('quorumSize', () => {
  test('is a strict majority', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(quorumSize), [1, 2, 2, 3, 3, 4, 4]);
  });
});

describe('planMembership: no change', () => {
  test('same members in the same order are unchanged, without steps', () => {
    const plan = planMembership([a, b, c], [a, b, c]);
    assert.equal(plan.kind, 'unchanged');
    assert.deepEqual(plan.steps, []);
    assert.deepEqual(plan.add, []);
    assert.deepEqual(plan.remove, []);
    assert.deepEqual(plan.warnings, []);
    assert.equal(plan.masterAfter, a);
  });

  test('same members in another order are reordered, without steps or warning', () => {
    const plan = planMembership([a, b, c], [a, c, b]);
    assert.equal(plan.kind, 'reordered');
    assert.deepEqual(plan.steps, []);
    assert.deepEqual(plan.warnings, []);
  });

  test('a reorder that would move the master warns and keeps the master', () => {
    const plan = planMembership([a, b, c], [b, a, c]);
    assert.equal(plan.kind, 'reordered');
    assert.deepEqual(plan.steps, []);
    assert.equal(plan.masterBefore, a);
    assert.equal(plan.masterAfter, a);
    assert.equal(plan.warnings.length, 1);
    assert.match(
      plan.warnings[0]!,
      /master would change from 172\.18\.135\.11 to 172\.18\.135\.12.*nothing is done/,
    );
  });
});

describe('planMembership: bootstrap', () => {
  test('1 → 3 adds the two new nodes in one step', () => {
    const plan = planMembership([a], [a, b, c]);
    assert.equal(plan.kind, 'bootstrap');
    assert.deepEqual(plan.add, [b, c]);
    assert.deepEqual(plan.remove, []);
    assert.deepEqual(plan.steps, [
      { action: 'add', nodes: [b, c], membersBefore: [a], membersAfter: [a, b, c] },
    ]);
    assert.deepEqual(plan.warnings, []);
  });

  test('the standalone placeholder 127.0.0.1 takes its address and is not removed', () => {
    const plan = planMembership(['127.0.0.1'], [a, b, c]);
    assert.equal(plan.kind, 'bootstrap');
    assert.deepEqual(plan.add, [a, b, c]);
    assert.deepEqual(plan.remove, []);
    assert.deepEqual(summary(plan), [`add ${a},${b},${c} -> 3`]);
    assert.equal(plan.masterBefore, '127.0.0.1');
    assert.equal(plan.masterAfter, a);
    assert.match(plan.warnings.join('\n'), /127\.0\.0\.1 is the standalone placeholder/);
  });

  test('the placeholder becoming a single named node is a bootstrap too', () => {
    const plan = planMembership(['localhost'], [a]);
    assert.equal(plan.kind, 'bootstrap');
    assert.deepEqual(plan.steps, [
      { action: 'add', nodes: [a], membersBefore: ['localhost'], membersAfter: [a] },
    ]);
  });

  test('warns that the old node loses its data when another node becomes master', () => {
    const plan = planMembership([a], [b, a, c]);
    assert.equal(plan.kind, 'bootstrap');
    assert.equal(plan.masterAfter, b);
    assert.match(plan.warnings.join('\n'), /wipes 172\.18\.135\.11's data/);
  });

  test('a real standalone node that leaves is replaced, so its data is copied off first', () => {
    const plan = planMembership([a], [b, c]);
    assert.equal(plan.kind, 'replace');
    assert.deepEqual(summary(plan), [`add ${b},${c} -> 3`, `remove ${a} -> 2`]);
  });
});

describe('planMembership: grow', () => {
  test('adds all new nodes in one step, ending in the desired order', () => {
    const plan = planMembership([a, b, c], [a, b, c, d, e]);
    assert.equal(plan.kind, 'grow');
    assert.deepEqual(plan.steps, [
      { action: 'add', nodes: [d, e], membersBefore: [a, b, c], membersAfter: [a, b, c, d, e] },
    ]);
    assert.deepEqual(plan.warnings, []);
  });

  test('warns when the new nodes are at least half of the new membership', () => {
    const plan = planMembership([a, b], [a, b, c, d]);
    assert.equal(plan.kind, 'grow');
    assert.match(plan.warnings.join('\n'), /Adding 2 nodes to 2/);
  });

  test('2 → 3 does not warn', () => {
    assert.deepEqual(planMembership([a, b], [a, b, c]).warnings, []);
  });
});

describe('planMembership: shrink', () => {
  test('3 → 2 is allowed with one remove step and a no-fault-tolerance warning', () => {
    const plan = planMembership([a, b, c], [a, b]);
    assert.equal(plan.kind, 'shrink');
    assert.deepEqual(plan.steps, [
      { action: 'remove', nodes: [c], membersBefore: [a, b, c], membersAfter: [a, b] },
    ]);
    assert.equal(plan.warnings.length, 1);
    assert.match(plan.warnings[0]!, /2 members and no fault tolerance/);
  });

  test('5 → 3 removes one node per step and the master last', () => {
    const plan = planMembership([a, b, c, d, e], [b, c, d]);
    assert.equal(plan.kind, 'shrink');
    assert.deepEqual(plan.remove, [e, a]);
    assert.deepEqual(plan.steps, [
      { action: 'remove', nodes: [e], membersBefore: [a, b, c, d, e], membersAfter: [a, b, c, d] },
      { action: 'remove', nodes: [a], membersBefore: [a, b, c, d], membersAfter: [b, c, d] },
    ]);
    assert.equal(plan.masterAfter, b);
    assert.match(
      plan.warnings.join('\n'),
      /master moves from 172\.18\.135\.11 to 172\.18\.135\.12/,
    );
  });

  test('3 → 1 is refused at the step that would leave 1 of 2', () => {
    assert.throws(
      () => planMembership([a, b, c], [a]),
      refusedAsUnsafe(
        `[${a}, ${b}, ${c}]`,
        `to [${a}]`,
        'step 2 of 2',
        `remove ${c}`,
        'leave 1 of 2 members',
        '2 are needed',
        'How to proceed',
        'backupCluster',
        'restoreCluster',
        'Never delete data folders by hand',
      ),
    );
  });

  test('2 → 1 is refused', () => {
    assert.throws(
      () => planMembership([a, b], [b]),
      refusedAsUnsafe('step 1 of 1', `remove ${a}`, 'leave 1 of 2 members'),
    );
  });

  test('the guide for a multi-node target does not suggest going standalone', () => {
    // Unreachable with one-node steps except through a 2 → 1 step, so check via assertSafePlan.
    const plan: MembershipPlan = {
      ...planMembership([a, b, c], [a, b]),
      steps: [{ action: 'remove', nodes: [c, b], membersBefore: [a, b, c], membersAfter: [a] }],
    };
    assert.throws(
      () => assertSafePlan(plan),
      (err: unknown) => {
        assert.ok(err instanceof ClusterGuardError);
        assert.ok(!err.message.includes('backupCluster, set up the node standalone'));
        assert.ok(err.message.includes('remove one node at a time'));
        return true;
      },
    );
  });
});

describe('planMembership: replace', () => {
  test('[a,b,c] → [a,b,d] adds d, then removes c', () => {
    const plan = planMembership([a, b, c], [a, b, d]);
    assert.equal(plan.kind, 'replace');
    assert.deepEqual(plan.add, [d]);
    assert.deepEqual(plan.remove, [c]);
    assert.deepEqual(plan.steps, [
      { action: 'add', nodes: [d], membersBefore: [a, b, c], membersAfter: [a, b, c, d] },
      { action: 'remove', nodes: [c], membersBefore: [a, b, c, d], membersAfter: [a, b, d] },
    ]);
    assert.deepEqual(plan.warnings, []);
  });

  test('[a,b,c] → [d,e,f] grows to 6, then removes one at a time, the master last', () => {
    const plan = planMembership([a, b, c], [d, e, f]);
    assert.equal(plan.kind, 'replace');
    assert.deepEqual(summary(plan), [
      `add ${d},${e},${f} -> 6`,
      `remove ${b} -> 5`,
      `remove ${c} -> 4`,
      `remove ${a} -> 3`,
    ]);
    assert.deepEqual(plan.steps.at(-1)?.membersAfter, [d, e, f]);
    assert.ok(plan.steps.every(isSafeStep));
    assert.equal(plan.masterAfter, d);
    assert.match(plan.warnings.join('\n'), /Adding 3 nodes to 3/);
  });

  test('[a,b] → [c] is refused at its last removal', () => {
    assert.throws(
      () => planMembership([a, b], [c]),
      refusedAsUnsafe('step 3 of 3', `remove ${a}`, 'leave 1 of 2 members'),
    );
  });

  test('a single real node cannot be swapped for another', () => {
    assert.throws(() => planMembership([a], [b]), refusedAsUnsafe('step 2 of 2'));
  });
});

describe('planMembership: invalid input', () => {
  test('refuses an empty list, naming it', () => {
    assert.throws(() => planMembership([], [a]), refusedAsInvalid('current', 'at least one'));
    assert.throws(() => planMembership([a], []), refusedAsInvalid('desired', 'at least one'));
  });

  test('refuses duplicates, naming the address and the list', () => {
    assert.throws(
      () => planMembership([a, b], [a, b, b]),
      refusedAsInvalid('desired', `duplicate node address ${b}`),
    );
  });

  test('refuses an invalid address, naming its position and value', () => {
    assert.throws(
      () => planMembership([a, '172.18.135', c], [a]),
      refusedAsInvalid('current[1] "172.18.135"', 'expected an IPv4 address'),
    );
    assert.throws(() => planMembership([a], [a, '../x']), refusedAsInvalid('desired[1] "../x"'));
  });

  test('refuses something that is not a list', () => {
    assert.throws(() => planMembership(a as unknown as string[], [a]), refusedAsInvalid('current'));
  });

  test('accepts the seed typo address 17.28.135.15 and trims addresses', () => {
    const plan = planMembership([` ${a} `, b, c], [a, b, c, '17.28.135.15']);
    assert.equal(plan.kind, 'grow');
    assert.deepEqual(plan.current, [a, b, c]);
    assert.deepEqual(plan.add, ['17.28.135.15']);
  });
});

describe('safety helpers', () => {
  test('isSafeStep: adding is always safe, removing must keep a majority', () => {
    assert.equal(
      isSafeStep({ action: 'add', nodes: [b], membersBefore: [a], membersAfter: [a, b] }),
      true,
    );
    assert.equal(
      isSafeStep({ action: 'remove', nodes: [c], membersBefore: [a, b, c], membersAfter: [a, b] }),
      true,
    );
    assert.equal(
      isSafeStep({ action: 'remove', nodes: [b], membersBefore: [a, b], membersAfter: [a] }),
      false,
    );
  });

  test('findUnsafeStep names the first unsafe step and nothing for a safe plan', () => {
    const safe = planMembership([a, b, c], [a, b]);
    assert.equal(findUnsafeStep(safe), undefined);
    const unsafe: MembershipPlan = {
      ...safe,
      steps: [
        ...safe.steps,
        { action: 'remove', nodes: [b], membersBefore: [a, b], membersAfter: [a] },
      ],
    };
    assert.deepEqual(findUnsafeStep(unsafe)?.index, 1);
    assert.throws(() => assertSafePlan(unsafe), refusedAsUnsafe('step 2 of 2'));
  });

  test('a plan is a valid, JSON-safe payload', () => {
    const plan = planMembership([a, b, c], [d, e, f]);
    assert.deepEqual(membershipPlanSchema.parse(JSON.parse(JSON.stringify(plan))), plan);
  });
});
