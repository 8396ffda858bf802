import { nodeGroupLabel } from '../contracts/progress-matrix.js';

/**
 * What the Web UI's workflow list and a run's page show for a runbook started through the
 * client (the start options `staticSummary` and `staticDetails`): one line, and the input as
 * Markdown. Both are fixed at the start; the live state is under "Current details" and in the
 * memo `progress` (docs/design.md, "What the Web UI shows").
 */
export function startMetadata(
  name: string,
  params: { clusterId: string; dryRun?: boolean },
  nodes: string[] | undefined,
  input: unknown,
): { staticSummary: string; staticDetails: string } {
  const on = nodes && nodes.length > 0 ? ` on ${nodeGroupLabel(nodes)}` : '';
  const dry = params.dryRun ? ' (dry run)' : '';
  return {
    staticSummary: `${name} of cluster ${params.clusterId}${on}${dry}`,
    staticDetails: [
      `**${name}** of cluster \`${params.clusterId}\`${dry}, started with:`,
      '',
      '```json',
      JSON.stringify(input, null, 2),
      '```',
      '',
      'Steps: _Current details_ while it runs, the memo `progress` after; ' +
        '`temporal workflow query --name progress` for every step.',
    ].join('\n'),
  };
}
