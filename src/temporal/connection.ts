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

/** `temporal.tls` as the SDK wants it; an API key without a TLS setting means TLS. */
export async function tlsFor(
  options: Pick<TemporalOptions, 'tls' | 'apiKey'>,
): Promise<TLSConfig | boolean> {
  const t = options.tls;
  if (t === undefined) return options.apiKey !== undefined;
  if (typeof t === 'boolean') return t;
  return {
    ...(t.serverName ? { serverNameOverride: t.serverName } : {}),
    ...(t.caFile ? { serverRootCACertificate: await readPem(t.caFile, 'CA certificate') } : {}),
    ...(t.certFile && t.keyFile
      ? {
          clientCertPair: {
            crt: await readPem(t.certFile, 'client certificate'),
            key: await readPem(t.keyFile, 'client key'),
          },
        }
      : {}),
  };
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

/** A client for starting, signalling and querying runbooks. */
export async function connectClient(
  options: Pick<TemporalOptions, 'address' | 'namespace'> &
    Partial<Pick<TemporalOptions, 'tls' | 'apiKey'>>,
  codec?: CodecOptions,
): Promise<Client> {
  const connection = await Connection.connect({
    address: options.address,
    tls: await tlsFor(options),
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
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
  options: Pick<TemporalOptions, 'address'> & Partial<Pick<TemporalOptions, 'tls' | 'apiKey'>>,
): Promise<NativeConnection> {
  return NativeConnection.connect({
    address: options.address,
    tls: await tlsFor(options),
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
  });
}
