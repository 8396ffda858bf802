import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { AppConfig } from '../config/app-config.js';
import { dataConverterFor, metadataFor, tlsFor } from '../client/transport.js';
import { activeTracing } from '../observability/tracing.js';

export type TemporalOptions = AppConfig['temporal'];
export type CodecOptions = AppConfig['codec'];

// Shared with the client, which must not load the worker's native module.
export { dataConverterFor, tlsFor };

/**
 * A client for starting, signalling and querying runbooks. A `temporal.profile` is already
 * merged into the options when the config is parsed (src/temporal/profile.ts), so the address,
 * namespace, TLS, API key and headers here are the final ones.
 */
export async function connectClient(
  options: Pick<TemporalOptions, 'address' | 'namespace'> &
    Partial<Pick<TemporalOptions, 'tls' | 'apiKey' | 'grpcMeta'>>,
  codec?: CodecOptions,
): Promise<Client> {
  const connection = await Connection.connect({
    address: options.address,
    tls: await tlsFor(options),
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    ...metadataFor(options),
  });
  const dataConverter = await dataConverterFor(codec);
  // With tracing on (src/observability/tracing.ts), a runbook this client starts joins the trace.
  const tracing = activeTracing();
  return new Client({
    connection,
    namespace: options.namespace,
    ...(dataConverter ? { dataConverter } : {}),
    ...(tracing ? { interceptors: tracing.clientInterceptors } : {}),
  });
}

/** The connection a worker (orchestrator or node agent) polls through. */
export async function connectWorker(
  options: Pick<TemporalOptions, 'address'> &
    Partial<Pick<TemporalOptions, 'tls' | 'apiKey' | 'grpcMeta'>>,
): Promise<NativeConnection> {
  return NativeConnection.connect({
    address: options.address,
    tls: await tlsFor(options),
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    ...metadataFor(options),
  });
}
