import {
  createClusterStateActivities,
  type ClusterStateActivityDeps,
} from './cluster-state-activities.js';
import {
  createDistributionActivities,
  type DistributionActivityDeps,
} from './distribution-activities.js';

export type { ResetNodeInput, WriteClusterStateInput } from './cluster-state-activities.js';
export {
  defaultDownloadRetry,
  downloadRequestTimeoutMs,
  type DistributionArchive,
  type DownloadDistributionInput,
  type DownloadDistributionResult,
  type PackDistributionInput,
} from './distribution-activities.js';

export type MembershipActivityDeps = DistributionActivityDeps & ClusterStateActivityDeps;

/** Creates the membership activities of one node agent: configuration archives, cluster.json. */
export function createMembershipActivities(deps: MembershipActivityDeps) {
  return { ...createDistributionActivities(deps), ...createClusterStateActivities(deps) };
}

export type MembershipActivities = ReturnType<typeof createMembershipActivities>;
