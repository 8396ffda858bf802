/**
 * The node × bundle view (docs/bundles.md, "What runs where"): what each node's framework runs,
 * what its agent recorded, and what the cluster should run. Pure, so the rollout workflow renders
 * it into its Web UI details as well as the CLI.
 */

/** One bundle as a node's Felix framework reports it. */
export interface FrameworkBundleView {
  symbolicName: string;
  version: string;
  /** INSTALLED, RESOLVED, ACTIVE, … */
  state: string;
  /** `name STATE` per DS component; a failure text follows after `: `. */
  components: string[];
}

/** What one node's agent answers for the view (`GET /v1/bundles`, `listBundles`). */
export interface NodeBundles {
  node: string;
  /** Absent when the node runs no framework. */
  framework?: { pid: number; bundles: FrameworkBundleView[] } | { error: string };
  /** What rollouts recorded on this node (`installed.json`), by symbolic name. */
  recorded: Record<string, { version: string; sha256: string }>;
  /** The node could not be asked. */
  error?: string;
}

/** The version the cluster should run of a bundle (its desired set, see desired-bundles). */
export interface DesiredBundle {
  symbolicName: string;
  version: string;
  sha256: string;
  /** The rollout that made it desired. */
  workflowId: string;
  at: string;
}

export interface BundleViewRow {
  node: string;
  symbolicName: string;
  /** What the framework runs, or what was recorded where there is no framework. */
  version?: string;
  state?: string;
  components: string[];
  desired?: string;
  /** Why this row is not what the cluster should run; empty when it is. */
  drift: string[];
}

/** Framework bundles of the platform itself: not what an operator rolls out. */
const platformPrefixes = ['org.apache.felix.', 'org.osgi.', 'io.clusterguard.'];
const isPlatform = (symbolicName: string) =>
  symbolicName === 'org.apache.felix.framework' ||
  platformPrefixes.some((p) => symbolicName.startsWith(p));

/**
 * One row per node and bundle that was rolled out, is recorded, or is desired. Platform bundles
 * (Felix, SCR, the management bundle) are left out unless `all`.
 */
export function bundleViewRows(
  nodes: NodeBundles[],
  desired: DesiredBundle[] = [],
  all = false,
): BundleViewRow[] {
  const rows: BundleViewRow[] = [];
  const want = new Map(desired.map((d) => [d.symbolicName, d]));
  for (const n of nodes) {
    if (n.error) {
      rows.push({ node: n.node, symbolicName: '—', components: [], drift: [n.error] });
      continue;
    }
    const fw = n.framework && 'bundles' in n.framework ? n.framework.bundles : undefined;
    const names = new Set<string>([...Object.keys(n.recorded), ...want.keys()]);
    for (const b of fw ?? []) if (all || !isPlatform(b.symbolicName)) names.add(b.symbolicName);
    for (const name of [...names].sort()) {
      const running = fw?.find((b) => b.symbolicName === name);
      const recorded = n.recorded[name];
      const d = want.get(name);
      const drift: string[] = [];
      const version = fw ? running?.version : recorded?.version;
      if (n.framework && 'error' in n.framework) drift.push(n.framework.error);
      if (d && version !== d.version) {
        drift.push(version ? `runs ${version}, should run ${d.version}` : `lacks ${d.version}`);
      }
      if (running && running.state !== 'ACTIVE') drift.push(`bundle ${running.state}`);
      const failing = running?.components.filter((c) => !/ (ACTIVE|SATISFIED)$/.test(c)) ?? [];
      if (failing.length > 0) drift.push(`component ${failing.join(', ')}`);
      if (fw && recorded && running && recorded.version !== running.version) {
        drift.push(`recorded ${recorded.version}`);
      }
      rows.push({
        node: n.node,
        symbolicName: name,
        ...(version ? { version } : {}),
        ...(running ? { state: running.state } : {}),
        components: running?.components ?? [],
        ...(d ? { desired: d.version } : {}),
        drift,
      });
    }
  }
  return rows;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A markdown table for the Web UI (`setCurrentDetails`) and `bundle list --markdown`. */
export function renderBundleViewMarkdown(rows: BundleViewRow[]): string {
  const lines = [
    '| node | bundle | version | state | components | desired | drift |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${[
        r.node,
        r.symbolicName,
        r.version ?? '—',
        r.state ?? '—',
        r.components.join(', ') || '—',
        r.desired ?? '—',
        r.drift.length > 0 ? `⚠ ${r.drift.join('; ')}` : 'ok',
      ]
        .map(cell)
        .join(' | ')} |`,
    );
  }
  return lines.join('\n');
}
