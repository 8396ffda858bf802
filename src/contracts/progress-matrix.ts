import {
  cell,
  progressHeaderLines,
  stepTableLines,
  type Progress,
  type ProgressStep,
  type StepStatus,
} from './progress.js';

/**
 * The node × phase view of a runbook's steps (docs/design.md, "What the Web UI shows"): one row
 * per node, one column per phase (a step id's part before its first `:`, e.g. `join:<node>`),
 * the count of nodes done per phase on top. Nodes whose rows are the same share one row, so a
 * 100-node rollout is a handful of rows. Workflow-safe: no Node built-ins.
 */
export interface NodePhaseMatrix {
  phases: string[];
  /** Per phase: nodes done (completed or skipped) and nodes that have the phase. */
  counts: { done: number; total: number }[];
  /** Nodes with the same cells, in the runbook's node order; `—` for cluster-wide steps. */
  rows: { nodes: string[]; cells: (StepStatus | undefined)[] }[];
}

const icon: Record<StepStatus, string> = {
  pending: '⏳',
  running: '▶️',
  waiting: '⚠️',
  parked: '🅿️',
  completed: '✅',
  failed: '❌',
  skipped: '⏭️',
};

/** Which status a cell shows when a node has several steps of one phase: the one to look at. */
const urgency: StepStatus[] = [
  'failed',
  'parked',
  'waiting',
  'running',
  'pending',
  'skipped',
  'completed',
];

export const matrixLegend =
  '✅ done · ▶️ running · ⏳ pending · ⚠️ node not answering · 🅿️ parked · ❌ failed · ⏭️ skipped';

/** Above this many steps the details list only the steps under way or in trouble. */
export const fullStepListLimit = 30;

function phaseOf(step: ProgressStep): string {
  return step.id.split(':')[0] ?? step.id;
}

function isDone(status: StepStatus | undefined): boolean {
  return status === 'completed' || status === 'skipped';
}

export function nodePhaseMatrix(steps: ProgressStep[]): NodePhaseMatrix {
  const phases: string[] = [];
  const nodes: string[] = [];
  const cells = new Map<string, StepStatus>();
  for (const step of steps) {
    const phase = phaseOf(step);
    const node = step.node ?? '—';
    if (!phases.includes(phase)) phases.push(phase);
    if (!nodes.includes(node)) nodes.push(node);
    const key = `${node}\n${phase}`;
    const known = cells.get(key);
    if (!known || urgency.indexOf(step.status) < urgency.indexOf(known)) {
      cells.set(key, step.status);
    }
  }
  const rows: NodePhaseMatrix['rows'] = [];
  const byCells = new Map<string, NodePhaseMatrix['rows'][number]>();
  for (const node of nodes) {
    const row = phases.map((p) => cells.get(`${node}\n${p}`));
    const key = row.join(',');
    const same = byCells.get(key);
    if (same) same.nodes.push(node);
    else {
      const fresh = { nodes: [node], cells: row };
      byCells.set(key, fresh);
      rows.push(fresh);
    }
  }
  const counts = phases.map((_, i) => {
    let done = 0;
    let total = 0;
    for (const r of rows) {
      if (r.cells[i] === undefined) continue;
      total += r.nodes.length;
      if (isDone(r.cells[i])) done += r.nodes.length;
    }
    return { done, total };
  });
  return { phases, counts, rows };
}

/** A group's nodes in a few characters: all of them up to three, else first, second … last. */
export function nodeGroupLabel(nodes: string[]): string {
  if (nodes.length <= 3) return nodes.join(', ');
  return `${nodes[0]}, ${nodes[1]} … ${nodes.at(-1)} (${nodes.length} nodes)`;
}

export function renderMatrixLines(matrix: NodePhaseMatrix): string[] {
  if (matrix.phases.length === 0) return [];
  return [
    `| node | ${matrix.phases.map(cell).join(' | ')} |`,
    `| --- |${' :-: |'.repeat(matrix.phases.length)}`,
    `| **done** | ${matrix.counts.map((c) => `**${c.done}/${c.total}**`).join(' | ')} |`,
    ...matrix.rows.map(
      (r) =>
        `| ${cell(nodeGroupLabel(r.nodes))} | ${r.cells.map((c) => (c ? icon[c] : '')).join(' | ')} |`,
    ),
    '',
    matrixLegend,
  ];
}

/**
 * "Current details" in the Web UI: the header, the node × phase matrix, then the steps — all of
 * them up to `fullStepListLimit`, else only those under way or in trouble.
 */
export function renderCurrentDetails(progress: Progress): string {
  const { steps } = progress;
  const listed =
    steps.length <= fullStepListLimit
      ? steps
      : steps.filter((s) => !['pending', 'completed', 'skipped'].includes(s.status));
  const omitted = steps.length - listed.length;
  return [
    ...progressHeaderLines(progress),
    ...renderMatrixLines(nodePhaseMatrix(steps)),
    '',
    ...(listed.length > 0 ? stepTableLines(listed) : []),
    ...(omitted > 0
      ? ['', `${omitted} pending or finished steps not listed: query \`progress\` for every step`]
      : []),
  ].join('\n');
}

/**
 * What the runbook keeps in its memo (`progress`), so the Web UI shows it with no worker
 * running: the status line, per phase done/total, and the grouped rows as text.
 */
export function progressMemo(progress: Progress): Record<string, unknown> {
  const matrix = nodePhaseMatrix(progress.steps);
  const done = progress.steps.filter((s) => isDone(s.status)).length;
  return {
    status: `${progress.status}, ${done}/${progress.steps.length} steps done`,
    updatedAt: progress.updatedAt,
    phases: matrix.phases.map(
      (p, i) => `${p} ${matrix.counts[i]?.done}/${matrix.counts[i]?.total}`,
    ),
    nodes: matrix.rows.map(
      (r) => `${nodeGroupLabel(r.nodes)}: ${r.cells.map((c) => (c ? icon[c] : '·')).join(' ')}`,
    ),
    ...(progress.paused ? { paused: progress.paused.reason } : {}),
    ...(progress.parked
      ? {
          parked: progress.parked.map(
            (p) => `${p.step}${p.node ? ` on ${p.node}` : ''}: ${p.reason}`,
          ),
        }
      : {}),
  };
}

/** Changes when the status, a pause, a parked step, or a phase's tenth of nodes done changes. */
export function coarseProgressKey(progress: Progress): string {
  const { counts } = nodePhaseMatrix(progress.steps);
  const tenths = counts.map((c) => Math.floor((10 * c.done) / Math.max(c.total, 1)));
  return JSON.stringify([progress.status, progress.paused, progress.parked, tenths]);
}
