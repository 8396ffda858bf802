// The workflowsPath of the orchestrator: every runbook, and nothing that is not workflow code.
// A runbook that asks for admission releases it however it ends (workflows/lib/admission.ts).
import { backupCluster as backup } from './backup-cluster.js';
import { bootstrapCluster as bootstrap } from './bootstrap-cluster.js';
import { decommissionNodes as decommission } from './decommission-nodes.js';
import { exportData as exportRunbook } from './export-data.js';
import { importData as importRunbook } from './import-data.js';
import { joinNode as join } from './join-node.js';
import { rejoinNode as rejoin } from './rejoin-node.js';
import { restoreCluster as restore } from './restore-cluster.js';
import { rolloutBundle as rollout } from './rollout-bundle.js';
import { verifyBackup as verify } from './verify-backup.js';
import { releasing } from './lib/admission.js';

export { pingCluster } from './ping-cluster.js';
export const bootstrapCluster = releasing(bootstrap);
export const joinNode = releasing(join);
export const rejoinNode = releasing(rejoin);
export const decommissionNodes = releasing(decommission);
export const backupCluster = releasing(backup);
export const verifyBackup = releasing(verify);
export const restoreCluster = releasing(restore);
export { scheduledBackup } from './scheduled-backup.js';
export const exportData = releasing(exportRunbook);
export const importData = releasing(importRunbook);
export const rolloutBundle = releasing(rollout);
export { clusterGuardian } from './cluster-guardian.js';
export { clusterAdmission } from './cluster-admission.js';
