// The workflowsPath of the orchestrator: every runbook, and nothing that is not workflow code.
export { pingCluster } from './ping-cluster.js';
export { bootstrapCluster } from './bootstrap-cluster.js';
export { joinNode } from './join-node.js';
export { rejoinNode } from './rejoin-node.js';
export { decommissionNodes } from './decommission-nodes.js';
export { backupCluster } from './backup-cluster.js';
export { verifyBackup } from './verify-backup.js';
export { restoreCluster } from './restore-cluster.js';
export { scheduledBackup } from './scheduled-backup.js';
export { exportData } from './export-data.js';
export { importData } from './import-data.js';
export { rolloutBundle } from './rollout-bundle.js';
export { clusterGuardian } from './cluster-guardian.js';
