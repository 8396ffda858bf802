import { readFile } from 'node:fs/promises';
import type { TLSConfig } from '@temporalio/client';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import {
  defaultPayloadConverter,
  type DataConverter,
  type LoadedDataConverter,
} from '@temporalio/common';
import { ClusterGuardError } from '../contracts/errors.js';
import { EncryptionCodec, keyRingFrom, loadKeyRing, parseKeyList } from './codec.js';
import { failureConverter } from './failure-converter.js';

/**
 * The failure converter's module, beside this one: `.ts` from source, `.js` when built by tsc.
 * A worker `require`s it, which an ES module bundle (`.mjs`, the compiled node agent) cannot
 * be, so that build writes a CommonJS copy beside itself (scripts/build-cli.mjs).
 */
export const failureConverterPath = converterPath(fileURLToPath(import.meta.url));

function converterPath(here: string): string {
  const ext = path.extname(here);
  return path.join(path.dirname(here), `failure-converter${ext === '.mjs' ? '.cjs' : ext}`);
}

/** TLS as the config file and connection profiles give it: PEM files or inline PEM text. */
export interface TlsOptions {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  certData?: string;
  keyData?: string;
  caData?: string;
  serverName?: string;
}

/** The key ring of payload encryption (`codec` of the config file; docs/operations.md). */
export interface CodecOptions {
  /** A YAML/JSON file `{ current, keys: { <id>: <base64> } }`. */
  keyFile?: string;
  /** `<id>=<base64>,…`, with `current`. */
  keys?: string;
  current?: string;
}

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
export async function tlsFor(options: {
  tls?: boolean | TlsOptions;
  apiKey?: string;
}): Promise<TLSConfig | boolean> {
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
export function metadataFor(options: { grpcMeta?: Record<string, string> }) {
  return options.grpcMeta && Object.keys(options.grpcMeta).length > 0
    ? { metadata: options.grpcMeta }
    : {};
}

/**
 * The data converter every process of a deployment shares: payloads encrypted with the key
 * ring of `codec`, or undefined (the SDK's default) when no ring is configured. A service that
 * talks to an orchestrator with encryption on passes it to `connect`.
 */
export async function dataConverterFor(
  codec: CodecOptions | undefined,
): Promise<(DataConverter & LoadedDataConverter) | undefined> {
  if (!codec?.keyFile && !codec?.keys) return undefined;
  const ring = codec.keyFile
    ? await loadKeyRing(codec.keyFile)
    : keyRingFrom({ current: codec.current, keys: parseKeyList(codec.keys ?? '') }, 'codec.keys');
  // Failure messages and stack traces go through the codec too (failure-converter.ts). A
  // worker loads the converter from its path, into the workflow bundle as well; a client takes
  // the instance, so that no process has to `require` a TypeScript file.
  return {
    payloadCodecs: [new EncryptionCodec(ring)],
    failureConverterPath,
    payloadConverter: defaultPayloadConverter,
    failureConverter,
  };
}
