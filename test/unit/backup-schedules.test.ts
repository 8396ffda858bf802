import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  backupScheduleId,
  intervalSchema,
  scheduledBackupWorkflowId,
  scheduleNameSchema,
} from '../../src/contracts/schedules.js';
import { createBackupScheduleSchema } from '../../src/client/index.js';

describe('backup schedule options', () => {
  const input = { clusterId: 'dev', master: '127.0.0.11' };

  test('exactly one of cron and every', () => {
    const both = createBackupScheduleSchema.safeParse({ cron: ['0 2 * * *'], every: '1h', input });
    assert.equal(both.success, false);
    assert.match(JSON.stringify(both.error?.issues), /give exactly one of cron and every/);
    assert.equal(createBackupScheduleSchema.safeParse({ input }).success, false);
    const cron = createBackupScheduleSchema.parse({ cron: ['0 2 * * *'], input });
    assert.equal(cron.name, 'default');
    assert.equal(cron.paused, false);
  });

  test('the backupCluster input is checked with its own schema', () => {
    const r = createBackupScheduleSchema.safeParse({ every: '1h', input: { ...input, keep: 0 } });
    assert.equal(r.success, false);
    assert.deepEqual(r.error?.issues[0]?.path, ['input', 'keep']);
    assert.equal(
      createBackupScheduleSchema.safeParse({ every: '1h', input: { ...input, typo: 1 } }).success,
      false,
    );
  });

  test('intervals, names and ids', () => {
    for (const ok of ['30s', '15m', '6h', '1d'])
      assert.ok(intervalSchema.safeParse(ok).success, ok);
    for (const bad of ['0s', '1w', '1 h', '-1h', '']) {
      assert.equal(intervalSchema.safeParse(bad).success, false, bad);
    }
    assert.equal(scheduleNameSchema.safeParse('../x').success, false);
    assert.equal(scheduleNameSchema.safeParse('Nightly').success, false);
    assert.equal(backupScheduleId('dev', 'nightly'), 'cg/dev/backup-schedule/nightly');
    assert.equal(scheduledBackupWorkflowId('dev', 'nightly'), 'cg/dev/scheduled-backup/nightly');
  });
});
