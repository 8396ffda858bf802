/**
 * What every runbook answers to the `progress` query and shows in the Web UI through
 * `setCurrentDetails`: one row per step, most of them per node.
 */
export type StepStatus =
  | 'pending'
  | 'running'
  | 'waiting'
  /** Exhausted its attempts: waits for an operator's retryStep, skipNode or abort. */
  | 'parked'
  | 'completed'
  | 'failed'
  | 'skipped';

export interface ProgressStep {
  id: string;
  title: string;
  node?: string;
  status: StepStatus;
  /** Attempts made so far, including activity retries that the node reported. */
  attempts: number;
  lastError?: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface Progress {
  runbook: string;
  clusterId: string;
  status: 'running' | 'completed' | 'failed';
  /** Set while an operator's `pause` holds the runbook before its next step. */
  paused?: { reason: string; since: string };
  /** Steps waiting for an operator, and the updates each accepts. */
  parked?: { step: string; node?: string; reason: string; since: string; accepts: string[] }[];
  steps: ProgressStep[];
  updatedAt: string;
}

const statusIcon: Record<StepStatus, string> = {
  pending: '⏳ pending',
  running: '▶️ running',
  waiting: '⚠️ waiting',
  parked: '🅿️ parked',
  completed: '✅ completed',
  failed: '❌ failed',
  skipped: '⏭️ skipped',
};

export function cell(text: string | undefined): string {
  // A pipe or newline inside a cell would break the Markdown table in the Web UI.
  return (text ?? '').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** The first lines of the details: runbook, cluster, status, steps done, pause and parked steps. */
export function progressHeaderLines(progress: Progress): string[] {
  const done = progress.steps.filter((s) => s.status === 'completed' || s.status === 'skipped');
  return [
    `**${progress.runbook}** on cluster \`${progress.clusterId}\` — ${progress.status}, ` +
      `${done.length}/${progress.steps.length} steps done`,
    '',
    ...(progress.paused
      ? [`⏸️ paused since ${progress.paused.since}: ${cell(progress.paused.reason)}`, '']
      : []),
    ...(progress.parked ?? []).flatMap((p) => [
      `🅿️ **parked** at \`${p.step}\`${p.node ? ` on ${p.node}` : ''}: ${cell(p.reason)} — ` +
        `send the update ${p.accepts.map((a) => `\`${a}\``).join(', ')}`,
      '',
    ]),
  ];
}

/** A Markdown table with one row per step. */
export function stepTableLines(steps: ProgressStep[]): string[] {
  return [
    '| step | node | status | attempts | last error |',
    '| --- | --- | --- | --- | --- |',
    ...steps.map(
      (s) =>
        `| ${cell(s.title)} | ${cell(s.node ?? '—')} | ${statusIcon[s.status]} | ${s.attempts} | ${cell(s.lastError)} |`,
    ),
  ];
}

/** The whole step list as Markdown: the header, then one row per step. */
export function renderProgressMarkdown(progress: Progress): string {
  return [...progressHeaderLines(progress), ...stepTableLines(progress.steps)].join('\n');
}
