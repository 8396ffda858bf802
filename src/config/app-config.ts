import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { nodeAddressSchema, orchestratorTaskQueue } from '../contracts/addresses.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { agentTlsSchema, commandSchema, middlewareConfigSchema, port } from './config-schemas.js';
import { applyTemporalProfile } from './temporal-profile.js';
import { dateFormatSettings } from './cluster-store.js';

/** Production data root of the old guard service (docs/design.md, "On-disk layout of a node"); development uses `.data/nodes/<address>`. */
export const productionRoot = '/ibnsdata/guard';
export const envPrefix = 'CG_';

export const appConfigSchema = z.object({
  clusterId: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected lower-case letters, digits and dashes')
    .default('default'),
  /**
   * `profile` / `configFile` name a profile of the `temporal` CLI's TOML file
   * (src/temporal/profile.ts): its address, namespace, API key, TLS and gRPC headers fill what
   * is not set here; the defaults below fill what is still unset after that.
   */
  temporal: z
    .preprocess(
      applyTemporalProfile,
      z.object({
        address: z.string().min(1).default('127.0.0.1:7233'),
        namespace: z.string().min(1).default('default'),
        taskQueue: z.string().min(1).default(orchestratorTaskQueue),
        /** The Temporal Web UI, for the links the agent's data endpoints answer with. */
        webUiUrl: z.url().optional(),
        /**
         * TLS to the Temporal frontend: `true` for the system CAs, or files (PEM) for a client
         * certificate, its key, the server's CA, and the name the server's certificate carries.
         */
        tls: z
          .union([
            z.stringbool(),
            z.boolean(),
            z
              .object({
                certFile: z.string().min(1).optional(),
                keyFile: z.string().min(1).optional(),
                caFile: z.string().min(1).optional(),
                serverName: z.string().min(1).optional(),
                /** PEM text instead of a file (a profile's `*_data`, or a secret in the env). */
                certData: z.string().min(1).optional(),
                keyData: z.string().min(1).optional(),
                caData: z.string().min(1).optional(),
              })
              .strict()
              .refine(
                (t) => !(t.certFile ?? t.certData) === !(t.keyFile ?? t.keyData),
                'give both the client certificate and its key (certFile/certData, keyFile/keyData), or neither',
              )
              .refine(
                (t) =>
                  !(t.certFile && t.certData) &&
                  !(t.keyFile && t.keyData) &&
                  !(t.caFile && t.caData),
                'give a file or data for each of cert, key and ca, not both',
              ),
          ])
          .optional(),
        /** An API key for the frontend (Temporal Cloud, or a proxy that checks one); implies TLS. */
        apiKey: z.string().min(1).optional(),
        /** gRPC headers sent with every call (a profile's `grpc_meta`). */
        grpcMeta: z.record(z.string(), z.string()).optional(),
        /** A profile of the `temporal` CLI's config file (`CG_TEMPORAL__PROFILE`). */
        profile: z.string().min(1).optional(),
        /**
         * That TOML file (`CG_TEMPORAL__CONFIG_FILE`); default `$TEMPORAL_CONFIG_FILE`, else
         * `~/.config/temporalio/temporal.toml`. Alone it selects the file's `default` profile.
         */
        configFile: z.string().min(1).optional(),
      }),
    )
    .prefault({}),
  /**
   * Payload encryption (src/temporal/codec.ts): every process of a deployment uses the same key
   * ring, from a YAML/JSON file `{ current, keys: { <id>: <base64> } }` or from `keys`
   * (`<id>=<base64>,…`, e.g. CG_CODEC__KEYS) with `current`. Absent: payloads are not encrypted.
   */
  codec: z
    .object({
      keyFile: z.string().min(1).optional(),
      keys: z.string().min(1).optional(),
      current: z.string().min(1).optional(),
      /**
       * The orchestrator serves the codec endpoint for the Web UI here (POST /decode, /encode),
       * to the UI's origins, with the operator token from `tokenFile`.
       */
      endpoint: z
        .object({
          host: z.string().min(1).default('127.0.0.1'),
          port: port.default(8089),
          tokenFile: z.string().min(1),
          allowOrigins: z
            .preprocess(
              (v) => (typeof v === 'string' ? v.split(',').map((o) => o.trim()) : v),
              z.array(z.url()).min(1),
            )
            .default(['http://127.0.0.1:8233']),
          /** HTTPS for the endpoint; a UI served over https can only call an https codec. */
          tls: z
            .object({ certFile: z.string().min(1), keyFile: z.string().min(1) })
            .strict()
            .optional(),
        })
        .strict()
        .optional(),
    })
    .strict()
    .refine((c) => !(c.keyFile && c.keys), 'give keyFile or keys, not both')
    .refine((c) => !c.keys || c.current, 'keys needs current: the id of the key that encrypts')
    .optional(),
  node: z
    .object({
      address: nodeAddressSchema.default('127.0.0.1'),
      /** Data root of this node (docs/design.md); defaults to the production root. */
      root: z.string().min(1).default(productionRoot),
      /**
       * How cluster.json dates are written back (docs/design.md, "The old service's formats we
       * keep"): `as-read` keeps the format the file came in.
       */
      clusterFileDateFormat: z.enum(dateFormatSettings).default('as-read'),
    })
    .prefault({}),
  agent: z
    .object({
      /** HTTP listen address; defaults to the node address so several nodes share a machine. */
      host: nodeAddressSchema.optional(),
      port: port.default(7700),
      /** The cluster token; prefer `tokenFile` or the environment so it stays out of the file. */
      token: z.string().min(16, 'expected at least 16 characters').optional(),
      tokenFile: z.string().min(1).optional(),
      /** Largest request body the agent accepts, in bytes. */
      maxBodyBytes: z.coerce
        .number()
        .int()
        .positive()
        .default(64 * 1024 * 1024),
      /**
       * HTTPS for the agent's API (PEM files). Agents fetch configuration archives and bundles
       * from each other over it: they verify the peer against `caFile` (else the system CAs)
       * and present this certificate as their client certificate.
       */
      tls: agentTlsSchema.optional(),
      /**
       * The self-healing node (docs/design.md): on a configured member the agent starts its
       * servers in order and starts one that died again, with backoff, up to `maxFailures`
       * failed starts in a row; it never starts a server a runbook has not set up on this node.
       */
      supervisor: z
        .object({
          enabled: z.stringbool().or(z.boolean()).default(true),
          intervalMs: z.coerce.number().int().min(100).max(600_000).default(2000),
          maxFailures: z.coerce.number().int().min(1).max(100).default(5),
          initialBackoffMs: z.coerce.number().int().min(0).max(600_000).default(1000),
          maxBackoffMs: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
          stableMs: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
        })
        .prefault({}),
    })
    .prefault({}),
  middleware: middlewareConfigSchema,
  /**
   * The appliance's webapps on this node (docs/design.md: stopped before a membership change,
   * started after it). Each command is an argv (`["/opt/app/bin/webapps", "stop"]`, or from the
   * environment a JSON array or a space-separated line); run without a shell. Unset: skipped.
   */
  webapps: z
    .object({
      stopCommand: commandSchema.optional(),
      startCommand: commandSchema.optional(),
      timeoutSeconds: z.coerce.number().int().positive().default(300),
    })
    .prefault({}),
  /**
   * Prometheus text on `http://host:port/metrics` (src/observability/metrics.ts): this process's
   * `clusterguard_…` series and the SDK's. Unset port: not served. Host: the agent's node
   * address, the orchestrator's 127.0.0.1, by default.
   */
  metrics: z
    .object({
      host: z.string().min(1).optional(),
      port: port.optional(),
    })
    .prefault({}),
  /**
   * Cluster-wide admission (docs/design.md "Admission"): how often a cluster's admission
   * workflow asks whether its holders still run, so that one that ended without releasing
   * (terminated, timed out) holds the cluster no longer than this.
   */
  admission: z
    .object({ checkSeconds: z.coerce.number().int().min(1).max(3600).default(30) })
    .prefault({}),
  /**
   * OpenTelemetry traces (src/observability/tracing.ts). `otlpEndpoint` (CG_TRACING__OTLP_ENDPOINT):
   * OTLP over HTTP, e.g. http://collector:4318/v1/traces; `console`: spans as JSON log lines on
   * stderr (for development). Neither: off.
   */
  tracing: z
    .object({
      otlpEndpoint: z.url({ protocol: /^https?$/ }).optional(),
      console: z.stringbool().or(z.boolean()).default(false),
      /** `service.name` of the spans; default the process's role (orchestrator, node-agent). */
      serviceName: z.string().min(1).optional(),
    })
    .prefault({}),
  /** Runbook events to Kafka (docs/design.md "Events"); only the orchestrator publishes them. */
  events: z
    .object({
      enabled: z.stringbool().or(z.boolean()).default(true),
      /** `host:port` of the brokers; by default those of the cluster the events are about. */
      brokers: z
        .preprocess(
          // From the environment: `CG_EVENTS__BROKERS=10.0.0.1:9092,10.0.0.2:9092`.
          (v) =>
            typeof v === 'string'
              ? v
                  .split(',')
                  .map((b) => b.trim())
                  .filter(Boolean)
              : v,
          // Checked as a whole, so that the error names the key an operator set.
          z
            .array(z.string())
            .min(1)
            .superRefine((brokers, ctx) => {
              for (const b of brokers)
                if (!/^[^\s:,/]+:\d{1,5}$/.test(b))
                  ctx.addIssue({ code: 'custom', message: `expected host:port, not "${b}"` });
            }),
        )
        .optional(),
      /** Broker port on each node, when the brokers are derived from the cluster's nodes. */
      kafkaPort: port.default(9092),
      /** Events not yet acknowledged by Kafka; they survive a restart of the orchestrator. */
      spoolFile: z.string().min(1).default('.data/events-spool.jsonl'),
    })
    .prefault({}),
  /**
   * The orchestrator's record of the clusters it ran runbooks on (src/config/cluster-registry.ts):
   * runbooks given only a cluster id find its master there. Orchestrators that share a Temporal
   * namespace must share this file (a shared volume), or each adopts the clusters it serves.
   */
  clusters: z.object({ recordFile: z.string().min(1).default('.data/clusters.json') }).prefault({}),
  /** Bundle rollout on this node (issue 6, docs/bundles.md). */
  bundles: z
    .object({
      /**
       * The folder the OSGi runtime watches (Felix FileInstall, Karaf `deploy/`); each bundle
       * is one `<symbolicName>.jar` there. Default: `<node root>/bundles/deploy`.
       */
      deployFolder: z.string().min(1).optional(),
      /**
       * Instead of the rename into the deploy folder: a command (argv, no shell) run with
       * BUNDLE_FILE, BUNDLE_SYMBOLIC_NAME, BUNDLE_VERSION and BUNDLE_SHA256 in its environment.
       */
      installCommand: z.array(z.string().min(1)).min(1).optional(),
      /** Largest bundle `POST /v1/bundles` accepts, in bytes. */
      maxUploadBytes: z.coerce
        .number()
        .int()
        .positive()
        .default(64 * 1024 * 1024),
      /**
       * Health checks a rollout may name (`healthCheck: "<name>"`): a command (argv, no shell)
       * that must exit 0, or a URL that must answer 2xx. Only these can run, so whoever starts
       * a workflow cannot run arbitrary commands on the nodes.
       */
      healthChecks: z
        .record(
          z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a health check name'),
          z
            .object({
              command: z.array(z.string().min(1)).min(1).optional(),
              url: z.url({ protocol: /^https?$/ }).optional(),
              timeoutMs: z.coerce.number().int().positive().default(30_000),
              /** Tries before the check counts as failed, `intervalMs` apart. */
              attempts: z.coerce.number().int().min(1).max(100).default(1),
              intervalMs: z.coerce.number().int().min(0).default(2000),
            })
            .refine((c) => (c.command ? 1 : 0) + (c.url ? 1 : 0) === 1, {
              message: 'give exactly one of command or url',
            }),
        )
        .default({}),
      /**
       * Also announce an upload the way the previous bundle service did (`{ channel, message }`
       * on a plain topic), for consumers written for it; off unless set (docs/bundles.md).
       */
      legacyAnnouncement: z
        .object({
          topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name'),
          channel: z.string().min(1),
        })
        .strict()
        .optional(),
    })
    .prefault({}),
});

export type AppConfig = z.infer<typeof appConfigSchema>;

/** `CG_AGENT__MAX_BODY_BYTES` → `['agent', 'maxBodyBytes']`. */
export function envKeyToPath(key: string): string[] {
  return key
    .slice(envPrefix.length)
    .split('__')
    .map((part) => part.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = keys.at(-1);
  if (last) node[last] = value;
}

function describeIssue(issue: z.core.$ZodIssue, origins: Map<string, string>): string {
  const key = issue.path.join('.') || '(root)';
  const origin = origins.get(key);
  return `${key}: ${issue.message}${origin ? ` (from ${origin})` : ''}`;
}

export interface LoadConfigOptions {
  /** YAML file; missing is fine when `required` is false. */
  file?: string;
  required?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Values under the file and the environment: what an embedded stack chooses. */
  defaults?: Record<string, unknown>;
}

/**
 * Loads the application config: defaults, then the YAML file, then `CG_*` environment variables
 * (`__` separates levels). Every problem is reported at once, naming the key, the expected value
 * and where the value came from.
 */
export async function loadAppConfig(options: LoadConfigOptions = {}): Promise<AppConfig> {
  const env = options.env ?? process.env;
  const raw: Record<string, unknown> = structuredClone(options.defaults ?? {});
  const origins = new Map<string, string>();

  const file = options.file ?? env.CG_CONFIG;
  if (file) {
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || options.required) {
        throw new ClusterGuardError(
          'InvalidConfig',
          `cannot read config file ${path.resolve(file)}: ${(err as Error).message}`,
        );
      }
    }
    if (text !== undefined) {
      let doc: unknown;
      try {
        doc = parseYaml(text, { prettyErrors: true });
      } catch (err) {
        throw new ClusterGuardError(
          'InvalidConfig',
          `config file ${path.resolve(file)} is not valid YAML: ${(err as Error).message}`,
        );
      }
      if (doc !== null && doc !== undefined) {
        if (typeof doc !== 'object' || Array.isArray(doc)) {
          throw new ClusterGuardError(
            'InvalidConfig',
            `config file ${path.resolve(file)} must hold a mapping at the top level`,
          );
        }
        mergeInto(raw, doc as Record<string, unknown>, [], origins, path.resolve(file));
      }
    }
  }

  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(envPrefix) || key === 'CG_CONFIG' || value === undefined) continue;
    const keys = envKeyToPath(key);
    setPath(raw, keys, value);
    origins.set(keys.join('.'), `environment variable ${key}`);
  }

  const parsed = appConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${describeIssue(i, origins)}`);
    throw new ClusterGuardError('InvalidConfig', `invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

function mergeInto(
  target: Record<string, unknown>,
  source: Record<string, unknown>,
  prefix: string[],
  origins: Map<string, string>,
  origin: string,
): void {
  for (const [key, value] of Object.entries(source)) {
    const keys = [...prefix, key];
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const existing = target[key];
      if (typeof existing !== 'object' || existing === null || Array.isArray(existing)) {
        target[key] = {};
      }
      mergeInto(
        target[key] as Record<string, unknown>,
        value as Record<string, unknown>,
        keys,
        origins,
        origin,
      );
    } else {
      target[key] = value;
      origins.set(keys.join('.'), origin);
    }
  }
}

/** The agent's cluster token: `agent.token`, else the first line of `agent.tokenFile`. */
export async function resolveAgentToken(config: AppConfig): Promise<string> {
  if (config.agent.token) return config.agent.token;
  if (config.agent.tokenFile) {
    let text: string;
    try {
      text = await readFile(config.agent.tokenFile, 'utf8');
    } catch (err) {
      throw new ClusterGuardError(
        'InvalidConfig',
        `agent.tokenFile: cannot read ${path.resolve(config.agent.tokenFile)}: ${(err as Error).message}`,
      );
    }
    const token = text.split(/\r?\n/)[0]?.trim() ?? '';
    if (token.length < 16) {
      throw new ClusterGuardError(
        'InvalidConfig',
        `agent.tokenFile: ${path.resolve(config.agent.tokenFile)} must hold a token of at least 16 characters`,
      );
    }
    return token;
  }
  throw new ClusterGuardError(
    'InvalidConfig',
    'agent.token: no cluster token configured; set CG_AGENT__TOKEN, agent.token or agent.tokenFile',
  );
}
