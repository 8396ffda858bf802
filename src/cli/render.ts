import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import type {
  BackupScheduleInfo,
  Progress,
  ProgressStep,
  RunbookListEntry,
  RunbookOutcome,
} from '../client/index.js';
import { paint, paintStatus } from './common.js';

function short(text: string | undefined, max: number): string {
  const t = (text ?? '').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

const finished = (s: ProgressStep) => s.status === 'completed' || s.status === 'skipped';

/**
 * What a running runbook waits for from an operator, or undefined: a step parked after its
 * attempts (it accepts retryStep, skipNode, abort) or a rollout's canary waiting for approve.
 */
export function operatorWait(p: Progress): string | undefined {
  // A step that waits for an unreachable node accepts only abort: it goes on by itself.
  const k = (p.parked ?? []).find((e) => e.accepts.includes('retryStep'));
  if (k) {
    return (
      `${k.step}${k.node ? ` on ${k.node}` : ''} is parked: ${short(k.reason, 300)} ` +
      `(send ${k.accepts.join(', ')})`
    );
  }
  const approve = p.steps.find((s) => s.id === 'approve' && s.status === 'waiting');
  return approve
    ? `${approve.lastError ?? 'the rollout waits for approve'} (send approve)`
    : undefined;
}

/**
 * `--wait`'s progress: a line for each step whose status changed since `shown` (keys
 * `<step>=<status>`); answers the keys shown now.
 */
export function progressLines(
  p: Progress,
  shown: Set<string>,
  write: (line: string) => void,
): Set<string> {
  const now = new Set<string>();
  for (const s of p.steps) {
    const key = `${s.id}=${s.status}`;
    now.add(key);
    if (shown.has(key) || s.status === 'pending') continue;
    const error = s.lastError && !finished(s) ? `: ${short(s.lastError, 200)}` : '';
    write(`  ${s.title}${s.node ? ` [${s.node}]` : ''} ${paintStatus(s.status)}${error}`);
  }
  const pausedKey = p.paused ? `paused=${p.paused.since}` : '';
  if (p.paused && !shown.has(pausedKey)) write(`  paused: ${p.paused.reason}`);
  if (pausedKey) now.add(pausedKey);
  return now;
}

/** The `progress` query as a header and a step table (`clusterguard status`). */
export function progressTable(p: Progress): string {
  const done = p.steps.filter(finished).length;
  const lines = [
    `${p.runbook} on cluster ${p.clusterId}: ${p.status}, ${done}/${p.steps.length} steps done`,
  ];
  if (p.paused) lines.push(paint('yellow', `paused since ${p.paused.since}: ${p.paused.reason}`));
  for (const k of p.parked ?? []) {
    lines.push(
      `${paint('yellow', 'parked')} at ${k.step}${k.node ? ` on ${k.node}` : ''}: ${short(k.reason, 300)} ` +
        `(accepts ${k.accepts.join(', ')})`,
    );
  }
  const table = new Table({
    head: ['step', 'node', 'status', 'attempts', 'last error'],
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [null, null, null, null, 60] as unknown as number[],
  });
  for (const s of p.steps) {
    table.push([
      s.title,
      s.node ?? '—',
      paintStatus(s.status),
      String(s.attempts),
      short(s.lastError, 240),
    ]);
  }
  lines.push(table.toString());
  return lines.join('\n');
}

export function outcomeLine(o: RunbookOutcome): string {
  const status = paintStatus(o.status.toLowerCase());
  const head = `${o.type} ${o.workflowId} (run ${o.runId}): ${status}`;
  return o.failure
    ? `${head}: ${o.failure.type ? `${o.failure.type}: ` : ''}${o.failure.message || '(no message)'}`
    : head;
}

export function runbookTable(rows: RunbookListEntry[]): string {
  const table = new Table({
    head: ['workflow id', 'runbook', 'status', 'started', 'closed'],
    style: { head: [], border: [] },
  });
  for (const r of rows) {
    table.push([
      r.workflowId,
      r.type,
      paintStatus(r.status.toLowerCase()),
      r.startTime,
      r.closeTime ?? '',
    ]);
  }
  return table.toString();
}

export function scheduleTable(rows: BackupScheduleInfo[]): string {
  const table = new Table({
    head: ['name', 'spec', 'state', 'next run', 'last fired', 'schedule id'],
    style: { head: [], border: [] },
  });
  for (const s of rows) {
    table.push([
      s.name,
      s.cron ? `cron ${s.cron.join(' | ')}` : `every ${s.every ?? '?'}`,
      s.paused ? 'paused' : 'active',
      s.nextRuns[0] ?? '',
      s.recent.at(-1)?.takenAt ?? 'never',
      s.scheduleId,
    ]);
  }
  return table.toString();
}

/**
 * Live progress bars (`clusterguard watch`): one per node with that node's steps, one for the
 * steps that belong to no node. Without a terminal, cli-progress prints the bars as lines.
 */
export class ProgressBars {
  private readonly multi: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.multi = new cliProgress.MultiBar(
      {
        stream,
        format: '{label} [{bar}] {value}/{total} {state}',
        barsize: 24,
        hideCursor: stream.isTTY ?? false,
        clearOnComplete: false,
        stopOnComplete: false,
        noTTYOutput: true,
        notTTYSchedule: 1000,
        emptyOnZero: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(p: Progress): void {
    const groups = new Map<string, ProgressStep[]>();
    for (const s of p.steps) {
      const key = s.node ?? '(cluster)';
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    const width = Math.max(...[...groups.keys()].map((k) => k.length), 9);
    for (const [node, steps] of groups) {
      const current =
        steps.find((s) => s.status === 'parked' || s.status === 'failed') ??
        steps.find((s) => s.status === 'running' || s.status === 'waiting') ??
        steps.findLast((s) => finished(s));
      const state = current ? `${current.status}: ${short(current.title, 50)}` : 'pending';
      const payload = { label: node.padEnd(width), state };
      const value = steps.filter(finished).length;
      let bar = this.bars.get(node);
      if (!bar) {
        bar = this.multi.create(steps.length, value, payload);
        this.bars.set(node, bar);
      } else {
        bar.setTotal(steps.length);
        bar.update(value, payload);
      }
    }
  }

  stop(): void {
    this.multi.stop();
  }
}
