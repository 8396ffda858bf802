// The workflowsPath of the orchestrator: every runbook, and nothing that is not workflow code.
export { pingCluster } from './ping-cluster.js';
