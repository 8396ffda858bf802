import path from 'node:path';
import type { AppConfig } from '../config/app-config.js';
import type { MiddlewareName, NodeLayout } from '../config/layout.js';
import type { Logger } from '../logger.js';
import { createCockroachAdapter } from './cockroach.js';
import { createControllerAdapter } from './controller.js';
import { createFelixAdapter } from './felix/adapter.js';
import { createKafkaAdapter } from './kafka.js';
import type { MiddlewareAdapter } from './types.js';
import { createZooKeeperAdapter } from './zookeeper.js';

export type ComponentName = MiddlewareName | 'controller' | 'felix';

export interface AdapterContext {
  address: string;
  layout: NodeLayout;
  logger: Logger;
  onProgress?: (detail: string) => void;
  signal?: AbortSignal;
}

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
  const base = {
    address: context.address,
    layout: context.layout,
    binDir: path.resolve(mw.binDir),
    java: mw.java,
    logger: context.logger,
    onProgress: context.onProgress,
    signal: context.signal,
  };
  switch (name) {
    case 'zookeeper': {
      const { operationOptions, ...options } = mw.zookeeper;
      return createZooKeeperAdapter({ ...base, options, operationOptions });
    }
    case 'kafka': {
      const { operationOptions, ...options } = mw.kafka;
      return createKafkaAdapter({ ...base, options, operationOptions });
    }
    case 'cockroach': {
      const { operationOptions, ...options } = mw.cockroach;
      return createCockroachAdapter({ ...base, options, operationOptions });
    }
    case 'felix': {
      const { operationOptions, ...options } = mw.felix;
      return createFelixAdapter({ ...base, options, operationOptions });
    }
    case 'controller':
      return createControllerAdapter({ ...base, options: mw.controller });
  }
}
