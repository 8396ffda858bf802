import path from 'node:path';
import type { AppConfig } from '../config/app-config.js';
import type { MiddlewareName, NodeLayout } from '../config/layout.js';
import type { Logger } from '../logger.js';
import { createBundlesAdapter } from '../bundles/backup.js';
import { createCockroachAdapter } from './cockroach/index.js';
import { createControllerAdapter } from './controller/index.js';
import { createFelixAdapter } from './felix/adapter.js';
import { createKafkaAdapter } from './kafka/index.js';
import type { AdapterDeps, MiddlewareAdapter } from './kit/index.js';
import { createZooKeeperAdapter } from './zookeeper/index.js';

export type ComponentName = MiddlewareName | 'controller' | 'felix' | 'bundles';

export interface AdapterContext {
  address: string;
  layout: NodeLayout;
  logger: Logger;
  onProgress?: (detail: string) => void;
  signal?: AbortSignal;
}

type Base = Omit<AdapterDeps<unknown>, 'options' | 'operationOptions'>;
type Middleware = AppConfig['middleware'];

/** Each component's adapter, from its section of the agent's `middleware` configuration. */
const factories: Record<ComponentName, (mw: Middleware, base: Base) => MiddlewareAdapter> = {
  zookeeper: (mw, base) => {
    const { operationOptions, ...options } = mw.zookeeper;
    return createZooKeeperAdapter({ ...base, options, operationOptions });
  },
  kafka: (mw, base) => {
    const { operationOptions, ...options } = mw.kafka;
    return createKafkaAdapter({ ...base, options, operationOptions });
  },
  cockroach: (mw, base) => {
    const { operationOptions, ...options } = mw.cockroach;
    return createCockroachAdapter({ ...base, options, operationOptions });
  },
  felix: (mw, base) => {
    const { operationOptions, ...options } = mw.felix;
    return createFelixAdapter({ ...base, options, operationOptions });
  },
  controller: (mw, base) => createControllerAdapter({ ...base, options: mw.controller }),
  // The application's bundle set: data only, in ZooKeeper and the bundle store.
  bundles: (mw, base) =>
    createBundlesAdapter({
      ...base,
      options: {
        zooKeeper: mw.enabled.includes('zookeeper'),
        zooKeeperClientPort: mw.zookeeper.clientPort,
      },
    }),
};

/**
 * The adapter of one middleware on this node, built from the agent's own configuration: binaries,
 * ports and commands come from there, never from a runbook's input (DESIGN: trust boundaries).
 */
export function createMiddlewareAdapter(
  name: ComponentName,
  config: AppConfig,
  context: AdapterContext,
): MiddlewareAdapter {
  const mw = config.middleware;
  return factories[name](mw, {
    address: context.address,
    layout: context.layout,
    binDir: path.resolve(mw.binDir),
    java: mw.java,
    logger: context.logger,
    onProgress: context.onProgress,
    signal: context.signal,
  });
}
