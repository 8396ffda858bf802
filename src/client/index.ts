/**
 * The service API, package export `clusterguard/client`: typed functions for other TypeScript
 * services (and the `clusterguard` CLI) to start every runbook, signal, update and query it,
 * follow and list runs, steer the guardian and manage backup schedules. Every input is checked
 * with the runbook's own schema (src/contracts/catalog.ts) before anything is sent; a bad one
 * throws `InvalidInputError` naming each field. Wire names and JSON shapes for clients in other
 * languages: docs/api.md.
 */
export { connect, connectOptionsSchema, type ConnectOptions } from './connect.js';
export { checked } from '../contracts/validation.js';
export { dataConverterFor, type CodecOptions, type TlsOptions } from './transport.js';
export * from './errors.js';

// --- runbooks --------------------------------------------------------------------------------
export {
  backupCluster,
  bootstrapCluster,
  checkRunbookInput,
  decommissionNodes,
  exportData,
  importData,
  joinNode,
  pingCluster,
  rejoinNode,
  restoreCluster,
  rolloutBundle,
  startGuardian,
  startRunbook,
  verifyBackup,
  type RunbookHandle,
  type StartOptions,
  type Started,
} from './start.js';
export {
  dataRunbookNames,
  membershipRunbookNames,
  runbooks,
  type DataRunbookName,
  type Lane,
  type MembershipRunbookName,
  type RunbookInput,
  type RunbookName,
  type RunbookParams,
  type RunbookResult,
} from '../contracts/catalog.js';
export { orchestratorTaskQueue } from '../contracts/addresses.js';

// --- messages --------------------------------------------------------------------------------
export {
  abortArgSchema,
  abortRunbook,
  approveArgSchema,
  approveRollout,
  getProgress,
  handleOf,
  pauseRunbook,
  resumeRunbook,
  retryStep,
  retryStepArgSchema,
  rolloutStatus,
  skipNode,
  skipNodeArgSchema,
} from './messages.js';
export * as messages from '../contracts/messages.js';
export {
  guardianHandle,
  guardianState,
  pauseGuardian,
  requestReconcile,
  resumeGuardian,
  setGuardianMembership,
  stopGuardian,
  type GuardianHandle,
} from './guardian.js';
export {
  followRunbook,
  listRunbooks,
  listRunbooksSchema,
  membershipTiming,
  runbookOutcome,
  workflowUiUrl,
  type RunbookListEntry,
  type RunbookOutcome,
} from './runs.js';
export * from './schedules.js';

// --- inputs, results, events -------------------------------------------------------------------
export type { Progress, ProgressStep, StepStatus } from '../contracts/progress.js';
export {
  eventsTopic,
  runbookEventSchema,
  runbookEventTypes,
  type CloudEvent,
  type RunbookEvent,
  type RunbookEventType,
} from '../contracts/events.js';
export {
  dataComponents,
  backupClusterInputSchema,
  exportDataInputSchema,
  importDataInputSchema,
  restoreClusterInputSchema,
  verifyBackupInputSchema,
  type BackupClusterInput,
  type BackupClusterResult,
  type ExportDataInput,
  type ExportDataResult,
  type ImportDataInput,
  type ImportDataResult,
  type RestoreClusterInput,
  type RestoreClusterResult,
  type VerifyBackupInput,
  type VerifyBackupResult,
} from '../contracts/data-runbooks.js';
export {
  membershipMiddleware,
  bootstrapClusterInputSchema,
  decommissionNodesInputSchema,
  joinNodeInputSchema,
  rejoinNodeInputSchema,
  type BootstrapClusterInput,
  type DecommissionNodesInput,
  type JoinNodeInput,
  type MembershipRunbookResult,
  type RejoinNodeInput,
} from '../contracts/membership-runbooks.js';
export {
  pingClusterInputSchema,
  type PingClusterInput,
  type PingClusterResult,
} from '../contracts/ping.js';
export {
  rolloutBundleInputSchema,
  type ApproveArg,
  type BundlesView,
  type RolloutBundleInput,
  type RolloutBundleResult,
} from '../contracts/bundles.js';
export {
  clusterGuardianInputSchema,
  setMembershipSchema,
  type ClusterGuardianInput,
  type GuardianState,
  type SetMembershipArg,
} from '../contracts/guardian.js';
export type { ScheduledBackupInput, ScheduledBackupResult } from '../contracts/schedules.js';
