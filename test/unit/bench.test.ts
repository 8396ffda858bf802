import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  ansibleInventory,
  ansiblePlaybook,
  busyShare,
  eventTypeName,
  gapProfile,
  parseBenchArgs,
  parseRssMiB,
  percentile,
  scenarioNames,
  stepTimings,
  summarize,
  topSelfTime,
  type TimedEvent,
} from '../../bench/lib.js';

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);

describe('bench statistics', () => {
  test('nearest-rank percentiles of unsorted values', () => {
    const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    assert.equal(percentile(values, 50), 5);
    assert.equal(percentile(values, 95), 10);
    assert.equal(percentile(values, 0), 1);
    assert.equal(percentile([42], 99), 42);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.throws(() => percentile(values, 101), /outside 0\.\.100/);
  });

  test('p99 of 100 values is the 99th smallest, not the largest', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    const s = summarize(values);
    assert.deepEqual(
      { n: s.n, p50: s.p50, p95: s.p95, p99: s.p99, min: s.min, max: s.max, mean: s.mean },
      { n: 100, p50: 50, p95: 95, p99: 99, min: 1, max: 100, mean: 50.5 },
    );
  });
});

describe('bench arguments', () => {
  test('a filter selects the scenarios whose name contains it', () => {
    assert.deepEqual(parseBenchArgs(['rollout']).scenarios, [
      'rollout_scaling',
      'rollout_vs_ansible',
    ]);
    assert.deepEqual(parseBenchArgs([]).scenarios, [...scenarioNames]);
    const a = parseBenchArgs([
      '--quick',
      'memory',
      '--pragma',
      'synchronous=NORMAL',
      '--no-sticky',
    ]);
    assert.equal(a.quick, true);
    assert.equal(a.sticky, false);
    assert.deepEqual(a.pragmas, ['synchronous=NORMAL']);
    assert.deepEqual(a.scenarios, ['memory']);
  });

  test('bad arguments are refused with what is expected', () => {
    assert.throws(
      () => parseBenchArgs(['nothing-like-this']),
      /no scenario matches.*step_overhead/,
    );
    assert.throws(() => parseBenchArgs(['--fast']), /unknown option --fast/);
    assert.throws(() => parseBenchArgs(['--pragma', 'x; DROP']), /KEY=VALUE/);
    assert.throws(() => parseBenchArgs(['--pollers']), /needs a value/);
  });
});

describe('bench history timings', () => {
  // Two steps: scheduled at 0 and 100, each started 10 ms and completed 30 ms after scheduling.
  const events: TimedEvent[] = [
    { eventId: 5, eventType: 'ActivityTaskScheduled', eventTime: at(0) },
    { eventId: 6, eventType: 'ActivityTaskStarted', eventTime: at(10), scheduledEventId: 5 },
    { eventId: 7, eventType: 'ActivityTaskCompleted', eventTime: at(30), scheduledEventId: 5 },
    { eventId: 11, eventType: 'ActivityTaskScheduled', eventTime: at(100) },
    { eventId: 12, eventType: 'ActivityTaskStarted', eventTime: at(112), scheduledEventId: 11 },
    { eventId: 13, eventType: 'ActivityTaskCompleted', eventTime: at(140), scheduledEventId: 11 },
  ];

  test('per step, dispatch, execution and decide come from the event times', () => {
    assert.deepEqual(stepTimings(events), {
      perStep: [100],
      dispatch: [10, 12],
      execution: [20, 28],
      decide: [70],
    });
  });

  test('the gap profile sums the time before each kind of event, largest first', () => {
    const profile = gapProfile(events, 2);
    assert.deepEqual(profile[0], {
      gap: 'ActivityTaskCompleted → ActivityTaskScheduled',
      count: 1,
      msPer: 35,
      meanMs: 70,
    });
    assert.equal(
      profile.reduce((sum, g) => sum + g.msPer * 2, 0),
      140,
    );
  });

  test('event type names from the proto enum', () => {
    assert.equal(eventTypeName('EVENT_TYPE_ACTIVITY_TASK_SCHEDULED'), 'ActivityTaskScheduled');
    assert.equal(eventTypeName('EVENT_TYPE_TIMER_FIRED'), 'TimerFired');
  });
});

describe('bench helpers', () => {
  test('CPU profile self time is summed per function and shared out of the busy samples', () => {
    const frame = (functionName: string, url = '', lineNumber = 0) => ({
      functionName,
      url,
      lineNumber,
    });
    const profile = {
      nodes: [
        { id: 1, hitCount: 60, callFrame: frame('(idle)') },
        {
          id: 2,
          hitCount: 30,
          callFrame: frame('init', 'file:///x/node_modules/zod/v4/core.js', 9),
        },
        {
          id: 3,
          hitCount: 6,
          callFrame: frame('init', 'file:///x/node_modules/zod/v4/core.js', 9),
        },
        { id: 4, hitCount: 4, callFrame: frame('', 'file:///r/src/logger.ts', 1) },
      ],
    };
    assert.equal(busyShare(profile), 40);
    assert.deepEqual(topSelfTime(profile), [
      { fn: 'init', where: 'zod/v4/core.js:10', percentOfBusy: 90 },
      { fn: '(anonymous)', where: 'src/logger.ts:2', percentOfBusy: 10 },
    ]);
  });

  test('RSS in MiB from /proc/<pid>/status', () => {
    assert.equal(parseRssMiB('Name:\tnode\nVmRSS:\t  262144 kB\nThreads: 9\n'), 256);
    assert.throws(() => parseRssMiB('Name:\tnode\n'), /no VmRSS/);
  });

  test('the Ansible playbook and inventory parse and say what the rollout does', () => {
    const play = parseYaml(
      ansiblePlaybook({
        jar: '/tmp/b.jar',
        sha1: 'a'.repeat(40),
        destRoot: '/tmp/n',
        serial: 10,
        healthCommand: 'true',
      }),
    ) as { serial: number; tasks: Record<string, Record<string, string>>[] }[];
    assert.equal(play[0]?.serial, 10);
    const copy = play[0]?.tasks.find((t) => t['ansible.builtin.copy']);
    assert.equal(copy?.['ansible.builtin.copy']?.checksum, 'a'.repeat(40));
    const health = play[0]?.tasks.find((t) => t['ansible.builtin.command']);
    // A string, not YAML's boolean `true`: Ansible refuses a boolean command.
    assert.equal(health?.['ansible.builtin.command']?.cmd, 'true');
    const inventory = ansibleInventory(['node-1', 'node-2']);
    assert.match(inventory, /^node-2 ansible_connection=local$/m);
  });
});
