/**
 * Pure helpers of the benchmark (no processes, no Temporal): statistics, arguments, and the
 * timings read out of a workflow history. Unit-tested in test/unit/bench.test.ts.
 */

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile (`p` in 0..100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  if (p < 0 || p > 100) throw new Error(`percentile ${p} is outside 0..100`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

/** Rounds to `digits` decimals, for readable JSON. */
export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function summarize(values: readonly number[], digits = 1): Summary {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : Number.NaN;
  return {
    n,
    p50: round(percentile(values, 50), digits),
    p95: round(percentile(values, 95), digits),
    p99: round(percentile(values, 99), digits),
    mean: round(mean, digits),
    min: round(n ? Math.min(...values) : Number.NaN, digits),
    max: round(n ? Math.max(...values) : Number.NaN, digits),
  };
}

/**
 * Dynamic config of the bench's dev server with fast timers: a timer may fire at most 1 ms late
 * (default 1 s), and the timer and transfer queues may be read more often than 20 times a second.
 */
export const fastTimerConfig: Record<string, string> = {
  'history.timerProcessorMaxTimeShift': '"1ms"',
  'history.timerProcessorMaxPollRPS': '10000',
  'history.transferProcessorMaxPollRPS': '10000',
};

export const scenarioNames = [
  'step_overhead',
  'start_latency',
  'rollout_scaling',
  'rollout_vs_ansible',
  'guardian_history',
  'node_loss_detection',
  'memory',
  'felix_three_nodes',
  'cli_startup',
] as const;
export type ScenarioName = (typeof scenarioNames)[number];

export interface BenchArgs {
  quick: boolean;
  scenarios: ScenarioName[];
  /** Extra `--sqlite-pragma` values of the dev server (besides journal_mode=WAL). */
  pragmas: string[];
  /** Worker options under test: `--no-sticky` (maxCachedWorkflows 0), `--pollers N`. */
  sticky: boolean;
  pollers?: number;
  /** Hand the orchestrator a pre-built workflow bundle instead of bundling at its start. */
  prebuiltBundle: boolean;
  /**
   * Dev-server timer tuning (see serverTuning): the server's defaults let a timer fire up to
   * 1 s late, which makes a 100 ms guardian tick take about a second. `--default-timers` off.
   */
  fastTimers: boolean;
  /** Write V8 CPU profiles of the orchestrator to .data/bench-profiles/ and summarize them. */
  cpuProf: boolean;
}

/**
 * `bench/run.ts [scenario-filter…] [--quick] [--pragma K=V]… [--no-sticky] [--pollers N]
 * [--no-prebuilt-bundle] [--default-timers] [--cpu-prof]`. A filter selects every scenario whose name contains it.
 */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = {
    quick: false,
    scenarios: [],
    pragmas: [],
    sticky: true,
    prebuiltBundle: true,
    fastTimers: true,
    cpuProf: false,
  };
  const filters: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--no-sticky') args.sticky = false;
    else if (a === '--no-prebuilt-bundle') args.prebuiltBundle = false;
    else if (a === '--default-timers') args.fastTimers = false;
    else if (a === '--cpu-prof') args.cpuProf = true;
    else if (a === '--pragma') {
      const v = value();
      if (!/^[a-z_]+=[A-Za-z0-9_-]+$/.test(v)) throw new Error(`--pragma ${v}: expected KEY=VALUE`);
      args.pragmas.push(v);
    } else if (a === '--pollers') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error('--pollers: expected 1..100');
      args.pollers = n;
    } else if (a.startsWith('--')) {
      throw new Error(
        `unknown option ${a}: expected --quick, --pragma K=V, --no-sticky, --pollers N, ` +
          '--no-prebuilt-bundle, --default-timers, --cpu-prof',
      );
    } else filters.push(a);
  }
  args.scenarios = scenarioNames.filter(
    (s) => filters.length === 0 || filters.some((f) => s.includes(f)),
  );
  if (args.scenarios.length === 0) {
    throw new Error(
      `no scenario matches ${filters.join(', ')}: choose from ${scenarioNames.join(', ')}`,
    );
  }
  return args;
}

/** The parts of a history event the timing helpers read (as in `historyToJSON`/the proto). */
export interface TimedEvent {
  eventId: number;
  eventType: string;
  eventTime: Date;
  /** For activity started/completed events: the scheduled event they belong to. */
  scheduledEventId?: number;
  /** For ActivityTaskScheduled: the task queue (`cg-node-<address>`). */
  taskQueue?: string;
}

export interface StepTimings {
  /** From one step's ActivityTaskScheduled to the next one's: the whole cost of a step. */
  perStep: number[];
  /** Scheduled → started: the wait for a poller to pick the task up. */
  dispatch: number[];
  /** Started → completed: the activity itself plus reporting its result. */
  execution: number[];
  /** Completed → next scheduled: the workflow task that decides the next step. */
  decide: number[];
}

/** Per-activity timings of a strictly sequential workflow, from its history (ms). */
export function stepTimings(events: readonly TimedEvent[]): StepTimings {
  const scheduled = events.filter((e) => e.eventType === 'ActivityTaskScheduled');
  const byScheduled = (type: string) =>
    new Map(
      events
        .filter((e) => e.eventType === type && e.scheduledEventId !== undefined)
        .map((e) => [e.scheduledEventId, e.eventTime.getTime()]),
    );
  const started = byScheduled('ActivityTaskStarted');
  const completed = byScheduled('ActivityTaskCompleted');
  const t: StepTimings = { perStep: [], dispatch: [], execution: [], decide: [] };
  scheduled.forEach((s, i) => {
    const at = s.eventTime.getTime();
    const st = started.get(s.eventId);
    const done = completed.get(s.eventId);
    const next = scheduled[i + 1];
    if (st !== undefined) t.dispatch.push(st - at);
    if (st !== undefined && done !== undefined) t.execution.push(done - st);
    if (next) {
      t.perStep.push(next.eventTime.getTime() - at);
      if (done !== undefined) t.decide.push(next.eventTime.getTime() - done);
    }
  });
  return t;
}

/** `VmRSS` of a `/proc/<pid>/status` text, in MiB. */
export function parseRssMiB(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error('no VmRSS line in the status text (has the process exited?)');
  return round(Number(m[1]) / 1024, 1);
}

/** An Ansible inventory of `hosts` that all run on this machine (`ansible_connection=local`). */
export function ansibleInventory(hosts: readonly string[]): string {
  return [
    '[nodes]',
    ...hosts.map((h) => `${h} ansible_connection=local`),
    '',
    '[nodes:vars]',
    // The venv's interpreter, so that no host runs Python discovery first.
    'ansible_python_interpreter={{ ansible_playbook_python }}',
    '',
  ].join('\n');
}

/** The playbook that does what rolloutBundle does per node: copy with checksum, health command. */
export function ansiblePlaybook(options: {
  jar: string;
  sha1: string;
  destRoot: string;
  serial: number;
  healthCommand: string;
}): string {
  return [
    '- hosts: nodes',
    `  serial: ${options.serial}`,
    '  gather_facts: false',
    '  tasks:',
    '    - name: deploy folder',
    '      ansible.builtin.file:',
    `        path: "${options.destRoot}/{{ inventory_hostname }}/deploy"`,
    '        state: directory',
    '    - name: copy the bundle, verified by checksum',
    '      ansible.builtin.copy:',
    `        src: "${options.jar}"`,
    `        dest: "${options.destRoot}/{{ inventory_hostname }}/deploy/bench.jar"`,
    `        checksum: "${options.sha1}"`,
    '    - name: health check',
    '      ansible.builtin.command:',
    `        cmd: "${options.healthCommand}"`,
    '      changed_when: false',
    '',
  ].join('\n');
}

/** `EVENT_TYPE_ACTIVITY_TASK_SCHEDULED` → `ActivityTaskScheduled`. */
export function eventTypeName(enumName: string): string {
  return enumName
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, __: string, c: string) => c.toUpperCase());
}

/**
 * Where a history's time goes: the gap before each event, summed per `previous → event` pair,
 * largest first. `per` divides the totals (e.g. by the number of ticks of a loop).
 */
export function gapProfile(
  events: readonly TimedEvent[],
  per = 1,
  top = 8,
): { gap: string; count: number; msPer: number; meanMs: number }[] {
  const sums = new Map<string, { count: number; ms: number }>();
  for (let i = 1; i < events.length; i++) {
    const a = events[i - 1];
    const b = events[i];
    if (!a || !b) continue;
    const key = `${a.eventType} → ${b.eventType}`;
    const s = sums.get(key) ?? { count: 0, ms: 0 };
    s.count += 1;
    s.ms += b.eventTime.getTime() - a.eventTime.getTime();
    sums.set(key, s);
  }
  return [...sums]
    .map(([gap, s]) => ({
      gap,
      count: s.count,
      msPer: round(s.ms / per, 1),
      meanMs: round(s.ms / s.count, 1),
    }))
    .sort((x, y) => y.msPer - x.msPer)
    .slice(0, top);
}

/** The parts of a V8 `.cpuprofile` that a self-time summary reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    hitCount?: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
}

/**
 * Self time per function of a V8 CPU profile, largest first, as a share of the busy samples.
 * Paths are shortened to the package (`@temporalio/worker/…`) or the repo file.
 */
export function topSelfTime(
  profile: CpuProfile,
  top = 12,
): { fn: string; where: string; percentOfBusy: number }[] {
  // Idle samples say the thread waited (on the server, the agents, the machine): left out, so
  // that the shares are of the time it was busy.
  const busy = profile.nodes.filter((x) => x.callFrame.functionName !== '(idle)');
  const total = busy.reduce((n, x) => n + (x.hitCount ?? 0), 0);
  const sums = new Map<string, { fn: string; where: string; hits: number }>();
  for (const node of busy) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url
      .replace(/^file:\/\//, '')
      .replace(/^.*node_modules\//, '')
      .replace(/^.*\/(src|workflows|activities|worker|bench)\//, '$1/');
    const fn = functionName || '(anonymous)';
    const key = `${fn} ${where}:${lineNumber}`;
    const s = sums.get(key) ?? { fn, where: where ? `${where}:${lineNumber + 1}` : '', hits: 0 };
    s.hits += node.hitCount ?? 0;
    sums.set(key, s);
  }
  return [...sums.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, top)
    .map((s) => ({
      fn: s.fn,
      where: s.where,
      percentOfBusy: total ? round((100 * s.hits) / total, 1) : 0,
    }));
}

/** The share of a profile's samples in which the thread was not idle, in percent. */
export function busyShare(profile: CpuProfile): number {
  const all = profile.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0);
  const idle = profile.nodes
    .filter((x) => x.callFrame.functionName === '(idle)')
    .reduce((n, x) => n + (x.hitCount ?? 0), 0);
  return all ? round((100 * (all - idle)) / all, 1) : 0;
}
