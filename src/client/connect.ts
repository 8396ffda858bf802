import { Client, Connection, type ClientOptions, type TLSConfig } from '@temporalio/client';
import { z } from 'zod';
import { checked } from '../contracts/validation.js';
import { metadataFor, tlsFor } from './transport.js';

export const connectOptionsSchema = z
  .object({
    /** `host:port` of the Temporal frontend. */
    address: z.string().min(1).default('127.0.0.1:7233'),
    namespace: z.string().min(1).default('default'),
    /** TLS: `true` for the system's CAs, or files; any file given turns TLS on. */
    tls: z
      .union([
        z.boolean(),
        z
          .object({
            cert: z.string().min(1).optional(),
            key: z.string().min(1).optional(),
            ca: z.string().min(1).optional(),
            /** PEM text instead of a file (a connection profile's `*_data`). */
            certData: z.string().min(1).optional(),
            keyData: z.string().min(1).optional(),
            caData: z.string().min(1).optional(),
            serverName: z.string().min(1).optional(),
          })
          .strict()
          .refine(
            (t) => !(t.cert ?? t.certData) === !(t.key ?? t.keyData),
            'give both cert and key, or neither',
          )
          .refine(
            (t) => !(t.cert && t.certData) && !(t.key && t.keyData) && !(t.ca && t.caData),
            'give a file or data for each of cert, key and ca, not both',
          ),
      ])
      .optional(),
    /** Temporal Cloud or a proxy's API key; implies TLS unless `tls: false`. */
    apiKey: z.string().min(1).optional(),
    /** gRPC headers sent with every call (a connection profile's `grpc_meta`). */
    grpcMeta: z.record(z.string(), z.string()).optional(),
    connectTimeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();
export type ConnectOptions = z.input<typeof connectOptionsSchema>;

/** The SDK's TLS settings, read by the same code as the processes' (`temporal.tls`). */
export function tlsConfig(o: z.output<typeof connectOptionsSchema>): Promise<TLSConfig | boolean> {
  const t = o.tls;
  return tlsFor({
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ...(t === undefined
      ? {}
      : {
          tls:
            typeof t === 'boolean'
              ? t
              : {
                  ...(t.cert ? { certFile: t.cert } : {}),
                  ...(t.key ? { keyFile: t.key } : {}),
                  ...(t.ca ? { caFile: t.ca } : {}),
                  ...(t.certData ? { certData: t.certData } : {}),
                  ...(t.keyData ? { keyData: t.keyData } : {}),
                  ...(t.caData ? { caData: t.caData } : {}),
                  ...(t.serverName ? { serverName: t.serverName } : {}),
                },
        }),
  });
}

/**
 * A Temporal client; close it with `client.connection.close()`. `dataConverter` must match the
 * orchestrator's when it encrypts payloads.
 */
export async function connect(
  options: ConnectOptions = {},
  extra: Pick<ClientOptions, 'dataConverter'> = {},
): Promise<Client> {
  const o = checked(connectOptionsSchema, options, 'connection options', 'InvalidConfig');
  const connection = await Connection.connect({
    address: o.address,
    tls: await tlsConfig(o),
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ...metadataFor(o),
    connectTimeout: o.connectTimeoutMs,
  });
  return new Client({ connection, namespace: o.namespace, ...extra });
}
