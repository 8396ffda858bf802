/**
 * The operations of the MiddlewareService that every middleware adapter implements, by name:
 * `middlewareOperation` steps name them, and the agent's `operationOptions` configure them per
 * name. Here, below both src/config and src/middleware, so that each may import it.
 */
export const middlewareOperations = [
  'startServer',
  'stopServer',
  'checkServer',
  'createCluster',
  'prepareClusterConfig',
  'joinCluster',
  'rejoinCluster',
  'decommissionCluster',
  'exportData',
  'importData',
  'backupData',
  'restoreData',
  'checkInSync',
] as const;
export type MiddlewareOperation = (typeof middlewareOperations)[number];
