import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import type { ConnectOptions } from '../client/index.js';
import { orchestratorTaskQueue } from '../contracts/addresses.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { loadConnectionProfile, type ConnectionProfile } from '../config/temporal-profile.js';

/**
 * Where the CLI connects: flags first, then the environment (the `temporal` CLI's own names),
 * then a `temporal` CLI profile when one is named (`--profile`, `--config-file`), then the
 * config file, then the defaults of a local dev server.
 */

export interface ConnectionFlags {
  address?: string;
  namespace?: string;
  taskQueue?: string;
  config?: string;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsServerName?: string;
  apiKey?: string;
  connectTimeout?: number;
  uiUrl?: string;
  /** A profile of the `temporal` CLI's TOML file (`TEMPORAL_PROFILE`). */
  profile?: string;
  /** That TOML file (`TEMPORAL_CONFIG_FILE`); not the clusterguard file of `--config`. */
  configFile?: string;
}

const fileSchema = z
  .object({
    address: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
    taskQueue: z.string().min(1).optional(),
    /** The cluster a command acts on when `--cluster` is left out. */
    cluster: z.string().min(1).optional(),
    /** The Web UI, for the links the CLI prints (default: the dev server's, port + 1000). */
    uiUrl: z.url().optional(),
    tls: z
      .union([
        z.boolean(),
        z
          .object({
            cert: z.string().optional(),
            key: z.string().optional(),
            ca: z.string().optional(),
            serverName: z.string().optional(),
          })
          .strict(),
      ])
      .optional(),
    apiKey: z.string().min(1).optional(),
    /** The processes' key ring, when payloads are encrypted (docs/operations.md, "Secrets"). */
    codec: z
      .object({
        keyFile: z.string().min(1).optional(),
        keys: z.string().min(1).optional(),
        current: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** `--config`, else `$CLUSTERGUARD_CONFIG`, else `~/.config/clusterguard/cli.yaml` if present. */
export function configFilePath(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
): { file: string; required: boolean } | undefined {
  const given = flags.config ?? env.CLUSTERGUARD_CONFIG;
  if (given) return { file: given, required: true };
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  const file = path.join(base, 'clusterguard', 'cli.yaml');
  return existsSync(file) ? { file, required: false } : undefined;
}

function readConfigFile(file: string): z.output<typeof fileSchema> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `cannot read the config file ${file}: ${(err as Error).message}`,
    );
  }
  const lines = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines });
  const [bad] = doc.errors;
  if (bad) {
    const at = bad.linePos?.[0];
    throw new ClusterGuardError(
      'InvalidConfig',
      `the config file ${file} is not valid YAML${at ? ` at line ${at.line}` : ''}: ` +
        bad.message.split('\n')[0],
    );
  }
  const parsed = fileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => {
      // The line of the offending value, or of the unknown key.
      const keys = 'keys' in issue ? issue.keys : [];
      const node = doc.getIn([...issue.path, ...keys.slice(0, 1)], true) as
        { range?: [number, number, number] } | undefined;
      const key = keys[0] ? findKey(doc.getIn(issue.path, true), keys[0]) : undefined;
      const offset = key ?? node?.range?.[0];
      const where = offset !== undefined ? `line ${lines.linePos(offset).line}, ` : '';
      const name = issue.path.length ? issue.path.join('.') : '(top level)';
      return `${where}${name}: ${issue.message}`;
    });
    throw new ClusterGuardError(
      'InvalidConfig',
      `the config file ${file} is invalid: ${issues.join('; ')} (keys: address, namespace, ` +
        'taskQueue, cluster, uiUrl, tls: {cert, key, ca, serverName} or true, apiKey, codec)',
    );
  }
  // Certificate paths in the file are relative to the file.
  const d = parsed.data;
  if (d.tls && typeof d.tls === 'object') {
    const dir = path.dirname(file);
    const abs = (p?: string) => (p ? path.resolve(dir, p) : undefined);
    d.tls = { ...d.tls, cert: abs(d.tls.cert), key: abs(d.tls.key), ca: abs(d.tls.ca) };
  }
  return d;
}

/** Where the key `name` of a YAML map starts in the file. */
function findKey(map: unknown, name: string): number | undefined {
  if (!YAML.isMap(map)) return undefined;
  for (const pair of map.items) {
    if (YAML.isScalar(pair.key) && pair.key.value === name) return pair.key.range?.[0];
  }
  return undefined;
}

function envBool(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^(1|true|yes)$/i.test(value)) return true;
  if (/^(0|false|no)$/i.test(value)) return false;
  throw new ClusterGuardError('InvalidConfig', `${name}=${value}: expected true or false`);
}

export interface ResolvedConnection {
  connect: ConnectOptions;
  /** The key ring for encrypted payloads: CG_CODEC__KEY_FILE / CG_CODEC__KEYS, or `codec:`. */
  codec?: { keyFile?: string; keys?: string; current?: string };
  taskQueue: string;
  /** Where each setting came from, for `--help`-level troubleshooting. */
  configFile?: string;
  /** The `temporal` CLI profile read, if any. */
  profile?: { name: string; file: string };
  /** The Web UI's base URL, for links to runs. */
  uiUrl: string;
}

/**
 * The Temporal dev server serves its Web UI on the frontend's port + 1000 (7233 → 8233): the
 * default when neither `--ui-url`, `CLUSTERGUARD_UI_URL` nor `uiUrl:` says otherwise.
 */
export function defaultUiUrl(address: string): string {
  const m = /^(.*):(\d+)$/.exec(address);
  const host = m?.[1] ?? address;
  return `http://${host}:${m ? Number(m[2]) + 1000 : 8233}`;
}

/** `--cluster` when left out: `CLUSTERGUARD_CLUSTER`, else `cluster:` of the config file. */
export function defaultCluster(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (env.CLUSTERGUARD_CLUSTER) return env.CLUSTERGUARD_CLUSTER;
  const where = configFilePath(flags, env);
  return where && (where.required || existsSync(where.file))
    ? readConfigFile(where.file).cluster
    : undefined;
}

/**
 * The profile named by `--profile` / `--config-file` (or TEMPORAL_PROFILE /
 * TEMPORAL_CONFIG_FILE), or nothing: without those, the CLI reads no TOML file, as before.
 * As with the `temporal` CLI, a file alone means its `default` profile, which may be absent.
 */
function namedProfile(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
): { name: string; file: string; settings: ConnectionProfile } | undefined {
  const profile = flags.profile || env.TEMPORAL_PROFILE || undefined;
  const configFile = flags.configFile || env.TEMPORAL_CONFIG_FILE || undefined;
  if (!profile && !configFile) return undefined;
  const loaded = loadConnectionProfile({
    ...(profile ? { profile } : {}),
    ...(configFile ? { configFile } : {}),
    env,
    fileSetting: '--config-file (TEMPORAL_CONFIG_FILE)',
  });
  return { name: loaded.name, file: loaded.file, settings: loaded.settings ?? {} };
}

/**
 * One item of TLS material (`cert`, `key`, `ca`): a flag or variable first, then the profile's
 * file or inline PEM, then the settings file.
 */
function material(
  above: string | undefined,
  profileTls: ConnectionProfile['tls'],
  item: 'cert' | 'key' | 'ca',
  fromSettings: string | undefined,
): { file?: string; data?: string } {
  if (above) return { file: above };
  const data = profileTls?.[`${item}Data`];
  if (data) return { data };
  const file = profileTls?.[`${item}File`] ?? fromSettings;
  return file ? { file } : {};
}

export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedConnection {
  const where = configFilePath(flags, env);
  const file =
    where && (where.required || existsSync(where.file)) ? readConfigFile(where.file) : {};
  const fileTls = typeof file.tls === 'object' ? file.tls : {};
  const profile = namedProfile(flags, env);
  const p = profile?.settings;
  const pick = (...values: (string | undefined)[]) => values.find((v) => v !== undefined && v);
  // Flags and variables first; the profile's file only when neither gave one.
  const aboveCert = pick(flags.tlsCert, env.TEMPORAL_TLS_CERT, env.TEMPORAL_TLS_CLIENT_CERT_PATH);
  const aboveKey = pick(flags.tlsKey, env.TEMPORAL_TLS_KEY, env.TEMPORAL_TLS_CLIENT_KEY_PATH);
  const aboveCa = pick(flags.tlsCa, env.TEMPORAL_TLS_CA, env.TEMPORAL_TLS_SERVER_CA_CERT_PATH);
  const aboveServerName = pick(flags.tlsServerName, env.TEMPORAL_TLS_SERVER_NAME);
  const cert = material(aboveCert, p?.tls, 'cert', fileTls.cert);
  const key = material(aboveKey, p?.tls, 'key', fileTls.key);
  const ca = material(aboveCa, p?.tls, 'ca', fileTls.ca);
  const serverName = pick(aboveServerName, p?.tls?.serverName, fileTls.serverName);
  // A profile's `[tls]` table turns TLS on, `disabled = true` off, unless a flag or variable
  // gives TLS material of its own (flags and variables win over the profile).
  const aboveMaterial = !!(aboveCert || aboveKey || aboveCa || aboveServerName);
  let profileTlsOn: boolean | undefined;
  if (p?.tls) profileTlsOn = !p.tls.disabled || (aboveMaterial ? undefined : false);
  const tlsOn =
    flags.tls ??
    envBool(env.TEMPORAL_TLS, 'TEMPORAL_TLS') ??
    profileTlsOn ??
    (typeof file.tls === 'boolean' ? file.tls : undefined);
  const apiKey = pick(flags.apiKey, env.TEMPORAL_API_KEY, p?.apiKey, file.apiKey);
  // The same variables as the orchestrator's and the agents' (CG_CODEC__…).
  const keyFile = pick(env.CG_CODEC__KEY_FILE, file.codec?.keyFile);
  const keys = pick(env.CG_CODEC__KEYS, file.codec?.keys);
  const current = pick(env.CG_CODEC__CURRENT, file.codec?.current);
  const codec =
    keyFile || keys
      ? {
          ...(keyFile ? { keyFile } : {}),
          ...(keys ? { keys } : {}),
          ...(current ? { current } : {}),
        }
      : undefined;
  const items = { cert, key, ca };
  const anyMaterial = Object.values(items).some((m) => m.file ?? m.data) || !!serverName;
  let tls: ConnectOptions['tls'];
  if (tlsOn === false) tls = false;
  else if (anyMaterial) {
    tls = serverName ? { serverName } : {};
    for (const [item, m] of Object.entries(items) as [keyof typeof items, typeof cert][]) {
      if (m.file) tls[item] = m.file;
      if (m.data) tls[`${item}Data`] = m.data;
    }
  } else if (tlsOn) tls = true;
  const address =
    pick(flags.address, env.TEMPORAL_ADDRESS, p?.address, file.address) ?? '127.0.0.1:7233';
  return {
    connect: {
      address,
      namespace:
        pick(flags.namespace, env.TEMPORAL_NAMESPACE, p?.namespace, file.namespace) ?? 'default',
      ...(tls !== undefined ? { tls } : {}),
      ...(apiKey ? { apiKey } : {}),
      ...(p?.grpcMeta ? { grpcMeta: p.grpcMeta } : {}),
      connectTimeoutMs: Math.round((flags.connectTimeout ?? 1.5) * 1000),
    },
    uiUrl: (
      pick(flags.uiUrl, env.CLUSTERGUARD_UI_URL, file.uiUrl) ?? defaultUiUrl(address)
    ).replace(/\/+$/, ''),
    taskQueue:
      pick(flags.taskQueue, env.CLUSTERGUARD_TASK_QUEUE, file.taskQueue) ?? orchestratorTaskQueue,
    ...(codec ? { codec } : {}),
    ...(where ? { configFile: where.file } : {}),
    ...(profile ? { profile: { name: profile.name, file: profile.file } } : {}),
  };
}
