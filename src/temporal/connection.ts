import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { AppConfig } from '../config/app-config.js';

export type TemporalOptions = AppConfig['temporal'];

/** A client for starting, signalling and querying runbooks. */
export async function connectClient(
  options: Pick<TemporalOptions, 'address' | 'namespace'>,
): Promise<Client> {
  const connection = await Connection.connect({ address: options.address });
  return new Client({ connection, namespace: options.namespace });
}

/** The connection a worker (orchestrator or node agent) polls through. */
export async function connectWorker(
  options: Pick<TemporalOptions, 'address'>,
): Promise<NativeConnection> {
  return NativeConnection.connect({ address: options.address });
}
