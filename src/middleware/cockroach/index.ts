/** CockroachDB: options, the CLI's outputs parsed, the node's server, the adapter. */
export { createCockroachAdapter, type CockroachAdapter } from './adapter.js';
export * from './options.js';
export * from './parse.js';
export { cockroachPaths } from './server.js';
