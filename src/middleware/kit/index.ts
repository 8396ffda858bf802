/** What every middleware adapter is built on: its dependencies, files, processes, operations. */
export * from './deps.js';
export * from './files.js';
export * from './in-sync.js';
export * from './operations.js';
export * from './supervisor.js';
export * from './types.js';
