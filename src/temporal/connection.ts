import { readFile } from 'node:fs/promises';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import type { AppConfig } from '../config/app-config.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { EncryptionCodec, keyRingFrom, loadKeyRing, parseKeyList } from './codec.js';

export type TemporalOptions = AppConfig['temporal'];
export type CodecOptions = AppConfig['codec'];

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `cannot read the TLS ${what} ${file}: ${(err as Error).message}`,
    );
  }
}

/**
 * `temporal.tls` as the SDK wants it; an API key without a TLS setting means TLS. PEM material
 * comes from files or inline (`certData`, … — what a connection profile's `*_data` becomes).
 */
export async function tlsFor(
  options: Pick<TemporalOptions, 'tls' | 'apiKey'>,
): Promise<TLSConfig | boolean> {
  const t = options.tls;
  if (t === undefined) return options.apiKey !== undefined;
  if (typeof t === 'boolean') return t;
  const pem = async (data: string | undefined, file: string | undefined, what: string) =>
    data !== undefined ? Buffer.from(data) : file ? await readPem(file, what) : undefined;
  const ca = await pem(t.caData, t.caFile, 'CA certificate');
  const crt = await pem(t.certData, t.certFile, 'client certificate');
  const key = await pem(t.keyData, t.keyFile, 'client key');
  return {
    ...(t.serverName ? { serverNameOverride: t.serverName } : {}),
    ...(ca ? { serverRootCACertificate: ca } : {}),
    ...(crt && key ? { clientCertPair: { crt, key } } : {}),
  };
}

/** The gRPC headers of `temporal.grpcMeta` (a connection profile's `grpc_meta`). */
function metadataFor(options: Partial<Pick<TemporalOptions, 'grpcMeta'>>) {
  return options.grpcMeta && Object.keys(options.grpcMeta).length > 0
    ? { metadata: options.grpcMeta }
    : {};
}

/**
 * The data converter every process of a deployment shares: payloads encrypted with the key
 * ring of `codec`, or the SDK's default when no ring is configured.
 */
export async function dataConverterFor(codec: CodecOptions): Promise<DataConverter | undefined> {
  if (!codec?.keyFile && !codec?.keys) return undefined;
  const ring = codec.keyFile
    ? await loadKeyRing(codec.keyFile)
    : keyRingFrom({ current: codec.current, keys: parseKeyList(codec.keys ?? '') }, 'codec.keys');
  return { payloadCodecs: [new EncryptionCodec(ring)] };
}

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
  return new Client({
    connection,
    namespace: options.namespace,
    ...(dataConverter ? { dataConverter } : {}),
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
