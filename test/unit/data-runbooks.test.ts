// Pure contracts of the data runbooks (src/contracts/data-runbooks.ts): input schemas, backup
// ids, retention, manifest comparison and the plans that decide what is archived where.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { z } from 'zod';
import { archiveTimestamp as layoutTimestamp } from '../../src/config/layout.js';
import {
  archiveManifestFormat,
  archiveManifestSchema,
  archiveTimestamp,
  backupClusterInputSchema,
  backupIdOf,
  backupIdTime,
  compareManifest,
  dataWorkflowId,
  evaluateBackup,
  isBackupId,
  membersDifference,
  planBackup,
  planBackupCopies,
  planRetention,
  restoreClusterInputSchema,
  unsafeManifestPath,
  verifyBackupInputSchema,
  type ArchiveCheck,
  type ManifestSummary,
} from '../../src/contracts/data-runbooks.js';
import { describeZodError } from '../../src/contracts/validation.js';

const [a, b, c] = ['172.18.135.11', '172.18.135.12', '172.18.135.13'] as const;
const sha = (ch: string) => ch.repeat(64);

function refusal(schema: z.ZodType, input: unknown): string {
  const parsed = schema.safeParse(input);
  if (parsed.success) assert.fail(`expected a refusal of ${JSON.stringify(input)}`);
  return describeZodError(parsed.error);
}

describe('backup ids', () => {
  test('the workflow-safe timestamp equals the layout one', () => {
    for (const d of [
      new Date('2026-11-22T07:45:12.345Z'),
      new Date(0),
      new Date(Date.UTC(2030, 0, 1)),
    ]) {
      assert.equal(archiveTimestamp(d), layoutTimestamp(d));
    }
    assert.equal(archiveTimestamp(new Date('2026-11-22T07:45:12.345Z')), '20261122T074512Z');
  });

  test('an id is the timestamp, optionally with a label', () => {
    const at = new Date('2026-11-22T07:45:12Z');
    assert.equal(backupIdOf(at), '20261122T074512Z');
    assert.equal(backupIdOf(at, 'nightly'), '20261122T074512Z-nightly');
    assert.equal(
      backupIdTime('20261122T074512Z-nightly')?.toISOString(),
      '2026-11-22T07:45:12.000Z',
    );
  });

  test('anything that is not a safe file name is refused', () => {
    for (const bad of [
      '../x',
      '../../etc/passwd',
      '20261122T074512Z/../../x',
      '20261122T074512Z-../x',
      '/20261122T074512Z',
      '20261122T074512Z.zip',
      '20261122T074512Z-',
      '20261122T074512Z--x',
      '20261122T074512Z-a b',
      '20261122T074512Z-a/b',
      `20261122T074512Z-${'x'.repeat(65)}`,
      '20261322T074512Z',
      '20260230T074512Z',
      '20261122T256512Z',
      '2026-11-22T07:45:12Z',
      '',
    ]) {
      assert.equal(isBackupId(bad), false, bad);
      assert.match(
        refusal(verifyBackupInputSchema, { clusterId: 'dev', master: a, backupId: bad }),
        /backupId: expected a backup id/,
        bad,
      );
    }
    assert.equal(isBackupId(`20261122T074512Z-${'x'.repeat(64)}`), true);
  });
});

describe('input schemas', () => {
  test('backupCluster: defaults, middleware in run order, unknown keys refused', () => {
    const parsed = backupClusterInputSchema.parse({
      clusterId: 'dev',
      master: a,
      middleware: ['controller', 'kafka', 'zookeeper', 'kafka'],
    });
    assert.deepEqual(parsed.middleware, ['zookeeper', 'kafka', 'controller']);
    assert.equal(parsed.dryRun, false);
    assert.equal(parsed.stepAttempts, 5);
    assert.equal(parsed.keep, undefined);
    assert.match(
      refusal(backupClusterInputSchema, { clusterId: 'dev', master: a, path: '/etc' }),
      /Unrecognized key: "path"/,
    );
    // Without master, the runbook takes it from the cluster record (docs/design.md).
    assert.equal(backupClusterInputSchema.parse({ clusterId: 'dev' }).master, undefined);
  });

  test('backupCluster: labels and keep', () => {
    const ok = (label: string) =>
      backupClusterInputSchema.safeParse({ clusterId: 'dev', master: a, label }).success;
    assert.equal(ok('nightly'), true);
    assert.equal(ok('pre-upgrade_2'), true);
    assert.equal(ok('x'.repeat(64)), true);
    for (const bad of ['', '-x', '_x', '../x', 'a/b', 'a b', 'a.b', 'x'.repeat(65), 'ä']) {
      assert.match(
        refusal(backupClusterInputSchema, { clusterId: 'dev', master: a, label: bad }),
        /label: expected 1–64 letters/,
        bad,
      );
    }
    for (const keep of [0, -1, 1.5, '3']) {
      assert.match(
        refusal(backupClusterInputSchema, { clusterId: 'dev', master: a, keep }),
        /keep/,
      );
    }
    assert.match(
      refusal(backupClusterInputSchema, { clusterId: 'dev', master: a, middleware: ['redis'] }),
      /middleware\.0/,
    );
    assert.match(
      refusal(backupClusterInputSchema, { clusterId: 'dev', master: a, middleware: [] }),
      /at least one/,
    );
  });

  test('restoreCluster and verifyBackup need a backup id', () => {
    assert.match(refusal(restoreClusterInputSchema, { clusterId: 'dev', master: a }), /backupId/);
    const parsed = restoreClusterInputSchema.parse({
      clusterId: 'dev',
      master: a,
      backupId: '20261122T074512Z-e2e',
    });
    assert.equal(parsed.middleware, undefined);
    assert.equal(parsed.dryRun, false);
    assert.match(
      refusal(verifyBackupInputSchema, {
        clusterId: 'dev',
        master: a,
        backupId: '20261122T074512Z',
        dryRun: true,
      }),
      /Unrecognized key: "dryRun"/,
    );
  });

  test('one data runbook per cluster: cg/<cluster>/data', () => {
    assert.equal(dataWorkflowId('dev'), 'cg/dev/data');
  });
});

describe('retention', () => {
  const ids = [
    '20261120T010000Z',
    '20261122T010000Z-nightly',
    '20261121T010000Z',
    '20261122T010000Z',
    '20261119T010000Z-weekly',
  ];

  test('keeps the newest N, newest first', () => {
    assert.deepEqual(planRetention(ids, 2), {
      keep: ['20261122T010000Z-nightly', '20261122T010000Z'],
      remove: ['20261121T010000Z', '20261120T010000Z', '20261119T010000Z-weekly'],
    });
    assert.deepEqual(planRetention(ids, 10).remove, []);
  });

  test('never removes a protected backup, even an old one', () => {
    const r = planRetention(ids, 1, ['20261119T010000Z-weekly']);
    assert.deepEqual(r.keep, ['20261122T010000Z-nightly', '20261119T010000Z-weekly']);
    assert.equal(r.remove.length, 3);
  });

  test('by age: older than maxAgeDays goes, the newest stays even when old', () => {
    const now = new Date('2026-11-22T12:00:00Z');
    assert.deepEqual(planRetention(ids, undefined, [], { maxAgeDays: 2, now }), {
      keep: ['20261122T010000Z-nightly', '20261122T010000Z', '20261121T010000Z'],
      remove: ['20261120T010000Z', '20261119T010000Z-weekly'],
    });
    // With both rules a backup goes when either says so.
    assert.deepEqual(planRetention(ids, 1, [], { maxAgeDays: 2, now }).keep, [
      '20261122T010000Z-nightly',
    ]);
    const later = new Date('2027-06-01T00:00:00Z');
    assert.deepEqual(planRetention(ids, undefined, [], { maxAgeDays: 1, now: later }).keep, [
      '20261122T010000Z-nightly',
    ]);
    assert.throws(() => planRetention(ids, undefined, [], { maxAgeDays: 0, now }), /maxAgeDays/);
  });

  test('ignores names that are not backup ids, refuses keep < 1', () => {
    assert.deepEqual(planRetention(['notes', '../x', '20261122T010000Z'], 1).remove, []);
    assert.throws(() => planRetention(ids, 0), /keep/);
  });
});

describe('manifests', () => {
  const files = [
    { path: 'kafka/topics.json', bytes: 10, sha256: sha('a') },
    { path: 'zookeeper/znodes.json', bytes: 20, sha256: sha('b') },
  ];

  test('the same files agree', () => {
    assert.deepEqual(compareManifest(files, [...files].reverse()), []);
  });

  test('every difference names the file', () => {
    const problems = compareManifest(files, [
      { path: 'kafka/topics.json', bytes: 11, sha256: sha('a') },
      { path: 'zookeeper/extra', bytes: 1, sha256: sha('c') },
    ]);
    assert.deepEqual(problems, [
      'kafka/topics.json has 11 bytes, the manifest says 10',
      'zookeeper/extra is not in the manifest',
      'zookeeper/znodes.json is missing (the manifest lists it)',
    ]);
    assert.deepEqual(compareManifest(files, [files[0]!, { ...files[1]!, sha256: sha('d') }]), [
      `zookeeper/znodes.json has sha256 ${sha('d')}, the manifest says ${sha('b')}`,
    ]);
  });

  test('paths must stay inside a component folder', () => {
    assert.equal(unsafeManifestPath('zookeeper/znodes.json'), undefined);
    assert.equal(unsafeManifestPath('controller/etc-0/app/config.yaml'), undefined);
    for (const bad of [
      '../x',
      'zookeeper/../../x',
      '/etc/passwd',
      'manifest.json',
      'other/x',
      'kafka//x',
      'kafka\\x',
      'kafka/./x',
      'kafka',
    ]) {
      assert.ok(unsafeManifestPath(bad), bad);
    }
    const manifest = {
      format: archiveManifestFormat,
      op: 'backup',
      backupId: '20261122T074512Z',
      node: a,
      clusterId: 'dev',
      members: [a, b, c],
      workflowId: 'cg/dev/data',
      runId: 'r1',
      createdAt: '2026-11-22T07:45:12.000Z',
      archives: [{ node: a, components: ['zookeeper'] }],
      components: ['zookeeper'],
      files: [{ path: '../../etc/cron.d/x', bytes: 1, sha256: sha('e') }],
    };
    assert.throws(() => archiveManifestSchema.parse(manifest), /not a plain relative path/);
    const good = archiveManifestSchema.parse({ ...manifest, files });
    assert.deepEqual(good.skipped, []);
  });
});

describe('plans', () => {
  test('the replicated middleware once on the master, the controller per node', () => {
    assert.deepEqual(planBackup(b, [a, b, c], ['zookeeper', 'kafka'], [a, c]), [
      { node: b, components: ['zookeeper', 'kafka'] },
      { node: a, components: ['controller'] },
      { node: c, components: ['controller'] },
    ]);
    assert.deepEqual(planBackup(a, [a, b, c], ['kafka'], []), [{ node: a, components: ['kafka'] }]);
    assert.deepEqual(planBackup(a, [a, b], [], []), []);
  });

  test('the bundle set once on the master, beside the replicated middleware', () => {
    assert.deepEqual(planBackup(b, [a, b, c], ['zookeeper'], [a], true), [
      { node: b, components: ['zookeeper', 'bundles'] },
      { node: a, components: ['controller'] },
    ]);
    assert.deepEqual(planBackup(a, [a, b], [], [], true), [{ node: a, components: ['bundles'] }]);
    assert.deepEqual(planBackup(a, [a, b], ['zookeeper'], [], false), [
      { node: a, components: ['zookeeper'] },
    ]);
  });

  test('members must be the same, in any order', () => {
    assert.equal(membersDifference([a, b, c], [c, a, b]), undefined);
    assert.equal(
      membersDifference([a, b, c], [a, b, '172.18.135.14']),
      `the backup was taken of [${a}, ${b}, ${c}], the cluster is now [${a}, ${b}, 172.18.135.14]; no longer members: ${c}; new members: 172.18.135.14`,
    );
  });

  const summary = (node: string, over: Partial<ManifestSummary> = {}): ManifestSummary => ({
    format: archiveManifestFormat,
    op: 'backup',
    backupId: '20261122T074512Z',
    node,
    clusterId: 'dev',
    members: [a, b, c],
    workflowId: 'cg/dev/data',
    runId: 'r1',
    createdAt: '2026-11-22T07:45:12.000Z',
    archives: [
      { node: a, components: ['zookeeper', 'controller'] },
      { node: b, components: ['controller'] },
    ],
    components: node === a ? ['zookeeper', 'controller'] : ['controller'],
    skipped: [],
    ...over,
  });
  const found = (node: string, over: Partial<ManifestSummary> = {}): ArchiveCheck => ({
    node,
    present: true,
    archive: {
      node,
      file: `/r/backup-data-archive/20261122T074512Z.zip`,
      bytes: 100,
      sha256: sha('f'),
      entries: 3,
      files: 2,
      dataBytes: 50,
      manifest: summary(node, over),
    },
  });

  test('a whole backup has no problems', () => {
    const r = evaluateBackup('dev', '20261122T074512Z', [
      found(a),
      found(b),
      { node: c, present: false },
    ]);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.manifest?.archives.map((x) => x.node),
      [a, b],
    );
  });

  test('missing, failed, foreign and mixed archives are each named', () => {
    const id = '20261122T074512Z';
    assert.deepEqual(
      evaluateBackup('dev', id, [
        found(a),
        { node: b, present: false },
        { node: c, present: false },
      ]).problems,
      [`${b}: its archive of backup ${id} is missing`],
    );
    assert.deepEqual(
      evaluateBackup('dev', id, [
        found(a),
        { node: b, present: true, problem: 'archive x on node b fails verification: y' },
      ]).problems,
      [`${b}: archive x on node b fails verification: y`],
    );
    assert.match(
      evaluateBackup('other', id, [found(a), found(b)]).problems.join('\n'),
      /is of cluster dev, not other/,
    );
    assert.match(
      evaluateBackup('dev', id, [found(a), found(b, { runId: 'r2' })]).problems.join('\n'),
      /not one backup/,
    );
    assert.match(
      evaluateBackup('dev', id, [found(a), found(b), found(c)]).problems.join('\n'),
      /172\.18\.135\.13: holds an archive .* the backup's plan does not list/,
    );
    assert.match(
      evaluateBackup('dev', id, [found(a)]).problems.join('\n'),
      /172\.18\.135\.12 holds part of the backup but is not a member now/,
    );
    assert.deepEqual(
      evaluateBackup('dev', id, [
        { node: a, present: false },
        { node: b, present: false },
      ]).problems,
      [`no member has backup ${id} (asked ${a}, ${b})`],
    );
  });

  test('the replicated archive is copied to the first member that holds none', () => {
    const plan = planBackup(a, [a, b, c], ['zookeeper'], [b]);
    assert.deepEqual(planBackupCopies([a, b, c], plan), [{ from: a, to: c }]);
    assert.deepEqual(planBackupCopies([a], planBackup(a, [a], ['kafka'], [])), []);
    assert.deepEqual(planBackupCopies([a, b], planBackup(a, [a, b], [], [a, b])), []);
    // The bundle set is the cluster's, like the replicated data: its archive is copied too.
    const withBundles = planBackup(a, [a, b, c], ['zookeeper'], [], true);
    assert.deepEqual(planBackupCopies([a, b, c], withBundles), [{ from: a, to: b }]);
    assert.deepEqual(planBackupCopies([a, b], planBackup(a, [a, b], [], [], true)), [
      { from: a, to: b },
    ]);
  });

  test("a copy of the master's archive with the bundle set stands in for it", () => {
    const id = '20261122T074512Z';
    const only = {
      archives: [{ node: a, components: ['zookeeper' as const, 'bundles' as const] }],
    };
    const f = found(a, { ...only, components: ['zookeeper', 'bundles'] });
    const copy: ArchiveCheck = { ...f, node: b, archive: f.archive && { ...f.archive, node: b } };
    const r = evaluateBackup('dev', id, [{ node: a, present: false }, copy]);
    assert.deepEqual([r.problems, r.copies], [[], { [a]: b }]);
  });

  test("a verified copy stands in for a node's missing archive, not for a bad one", () => {
    const id = '20261122T074512Z';
    const only = { archives: [{ node: a, components: ['zookeeper' as const] }] };
    const copyOnB = (): ArchiveCheck => {
      const f = found(a, only);
      return { ...f, node: b, archive: f.archive && { ...f.archive, node: b } };
    };
    const standIn = evaluateBackup('dev', id, [
      { node: a, present: false },
      copyOnB(),
      { node: c, present: false },
    ]);
    assert.deepEqual(standIn.problems, []);
    assert.deepEqual(standIn.copies, { [a]: b });
    const both = evaluateBackup('dev', id, [found(a, only), copyOnB()]);
    assert.deepEqual([both.problems, both.copies], [[], {}]);
    assert.match(
      evaluateBackup('dev', id, [
        { node: a, present: true, problem: 'tampered' },
        copyOnB(),
      ]).problems.join('\n'),
      /: tampered/,
    );
    // A controller archive is the node's own data: another node's copy of it is refused.
    assert.match(
      evaluateBackup('dev', id, [
        { node: a, present: false },
        found(b),
        found(c, { node: a }),
      ]).problems.join('\n'),
      /its archive was written on/,
    );
  });
});
