import type { NodeLayout } from '../../config/layout.js';
import type { Logger } from '../../logger.js';
import type { MiddlewareOperation, OperationOptions } from './types.js';

/** What every adapter is built from: the node, its files, where binaries are, its options. */
export interface AdapterDeps<Options> {
  address: string;
  layout: NodeLayout;
  /** Binaries: production `resources/bin` (docs/design.md); development `.tools`. */
  binDir: string;
  /** The Java runtime for ZooKeeper and Kafka. */
  java?: string;
  options?: Partial<Options>;
  /** The old guard service (docs/design.md) operationOptions, per operation; missing ones take the adapter's defaults. */
  operationOptions?: Partial<Record<MiddlewareOperation, Partial<OperationOptions>>>;
  logger: Logger;
  /** Called while an operation waits (an activity passes its heartbeat here). */
  onProgress?: (detail: string) => void;
  signal?: AbortSignal;
}

export function operationOptions(
  defaults: Partial<Record<MiddlewareOperation, OperationOptions>>,
  overrides: AdapterDeps<unknown>['operationOptions'],
  op: MiddlewareOperation,
): OperationOptions {
  return { timeoutMs: 60_000, ...defaults[op], ...overrides?.[op] };
}
