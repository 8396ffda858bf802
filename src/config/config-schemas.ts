import { z } from 'zod';
import { middlewareOperations } from '../contracts/middleware.js';

/*
 * Parts of the process configuration (app-config.ts): shared value schemas and the `middleware`
 * section, whose options every adapter reads.
 */

export const port = z.coerce.number().int().min(1).max(65535);

/** The old guard service (docs/design.md) operationOptions: per operation, a timeout and log filters. */
export const operationOptionsMap = z
  .partialRecord(
    z.enum(middlewareOperations),
    z.object({
      timeoutMs: z.coerce.number().int().positive().optional(),
      successFilter: z.string().optional(),
      failFilter: z.string().optional(),
    }),
  )
  .optional();

/** A command line as argv; from the environment, a JSON array or a space-separated line. */
export const commandSchema = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const text = v.trim();
    if (text.startsWith('[')) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return v;
      }
    }
    return text.split(/\s+/).filter(Boolean);
  },
  z.array(z.string().min(1)).min(1, 'expected a command: the program and its arguments'),
);

/** A server certificate and key, and optionally who may connect (`agent.tls`). */
export const agentTlsSchema = z
  .object({
    certFile: z.string().min(1),
    keyFile: z.string().min(1),
    /** The CA that signed the agents' certificates (and, with requireClientCert, the clients'). */
    caFile: z.string().min(1).optional(),
    /** Refuse every TLS client without a certificate signed by `caFile` (mutual TLS). */
    requireClientCert: z.stringbool().or(z.boolean()).default(false),
  })
  .strict()
  .refine((t) => !t.requireClientCert || t.caFile !== undefined, {
    message: "requireClientCert needs caFile: the CA that signs the clients' certificates",
  });

/** `middleware.*`: where binaries are, what runs, and each middleware's options. */
export const middlewareConfigSchema = z
  .object({
    /** Where the middleware binaries live (docs/design.md: resources/bin; development: .tools). */
    binDir: z.string().min(1).default('resources/bin'),
    /** The Java runtime for ZooKeeper and Kafka. */
    java: z.string().min(1).default('java'),
    /**
     * The middleware this node runs (docs/design.md); the controller takes part in data operations
     * only. `felix`: the node's application runtime, where bundles are rolled out (docs/bundles.md).
     */
    enabled: z
      .preprocess(
        // From the environment: `CG_MIDDLEWARE__ENABLED=zookeeper,kafka` (empty: none).
        (v) =>
          typeof v === 'string'
            ? v
                .split(',')
                .map((m) => m.trim())
                .filter(Boolean)
            : v,
        z.array(z.enum(['cockroach', 'zookeeper', 'kafka', 'felix'])),
      )
      .default(['cockroach', 'zookeeper', 'kafka']),
    zookeeper: z
      .object({
        clientPort: port.default(2181),
        peerPort: port.default(2888),
        electionPort: port.default(3888),
        tickTime: z.coerce.number().int().positive().default(2000),
        initLimit: z.coerce.number().int().positive().default(10),
        syncLimit: z.coerce.number().int().positive().default(5),
        heapMb: z.coerce.number().int().min(32).default(128),
        operationOptions: operationOptionsMap,
      })
      .prefault({}),
    kafka: z
      .object({
        brokerPort: port.default(9092),
        controllerPort: port.default(9093),
        heapMb: z.coerce.number().int().min(64).default(256),
        replicationFactor: z.coerce.number().int().min(1).max(7).default(3),
        /** The old guard service (docs/design.md): topics to initialise. */
        topics: z
          .array(
            z.object({
              name: z.string().min(1),
              partitions: z.coerce.number().int().positive().optional(),
            }),
          )
          .default([]),
        serverProperties: z.record(z.string(), z.string()).optional(),
        operationOptions: operationOptionsMap,
      })
      .prefault({}),
    cockroach: z
      .object({
        sqlPort: port.default(26257),
        httpPort: port.default(8080),
        cache: z.string().default('256MiB'),
        maxSqlMemory: z.string().default('256MiB'),
        insecure: z.stringbool().or(z.boolean()).default(false),
        /** The old guard service (docs/design.md): databases, users and passwords to create. */
        databases: z
          .array(z.object({ name: z.string(), username: z.string(), password: z.string().min(1) }))
          .default([]),
        operationOptions: operationOptionsMap,
      })
      .prefault({}),
    /** Apache Felix, the node's application runtime (docs/bundles.md). */
    felix: z
      .object({
        /** clusterguard's management bundle listens here, on the node's address only. */
        managementPort: port.default(7701),
        heapMb: z.coerce.number().int().min(32).default(128),
        operationOptions: operationOptionsMap,
      })
      .prefault({}),
    controller: z
      .object({
        /** Absolute folders of the appliance's own application to back up and restore. */
        dataFolders: z.array(z.string()).default([]),
      })
      .prefault({}),
  })
  .prefault({});
