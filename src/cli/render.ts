import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import type {
  BackupScheduleInfo,
  Progress,
  ProgressStep,
  RunbookListEntry,
  RunbookOutcome,
} from '../client/index.js';

function short(text: string | undefined, max: number): string {
  const t = (text ?? '').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

const finished = (s: ProgressStep) => s.status === 'completed' || s.status === 'skipped';

/** The `progress` query as a header and a step table (`clusterguard status`). */
export function progressTable(p: Progress): string {
  const done = p.steps.filter(finished).length;
  const lines = [
    `${p.runbook} on cluster ${p.clusterId}: ${p.status}, ${done}/${p.steps.length} steps done`,
  ];
  if (p.paused) lines.push(`paused since ${p.paused.since}: ${p.paused.reason}`);
  for (const k of p.parked ?? []) {
    lines.push(
      `parked at ${k.step}${k.node ? ` on ${k.node}` : ''}: ${short(k.reason, 300)} ` +
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
    table.push([s.title, s.node ?? '—', s.status, String(s.attempts), short(s.lastError, 240)]);
  }
  lines.push(table.toString());
  return lines.join('\n');
}

export function outcomeLine(o: RunbookOutcome): string {
  const status = o.status.toLowerCase();
  const head = `${o.type} ${o.workflowId} (run ${o.runId}): ${status}`;
  return o.failure
    ? `${head}: ${o.failure.type ? `${o.failure.type}: ` : ''}${o.failure.message}`
    : head;
}

export function runbookTable(rows: RunbookListEntry[]): string {
  const table = new Table({
    head: ['workflow id', 'runbook', 'status', 'started', 'closed'],
    style: { head: [], border: [] },
  });
  for (const r of rows) {
    table.push([r.workflowId, r.type, r.status.toLowerCase(), r.startTime, r.closeTime ?? '']);
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
