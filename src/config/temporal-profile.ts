/**
 * Connection profiles of the `temporal` CLI (`temporal config set --profile prod …`, a TOML file,
 * read with `@temporalio/envconfig`), for the processes (`temporal.profile`) and the
 * `clusterguard` CLI (`--profile`). A profile is only read when one is named (or a file is):
 * a developer's `~/.config/temporalio/temporal.toml` never changes where a process connects
 * by itself.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  loadClientConfig,
  type ClientConfig,
  type ClientConfigProfile,
  type ConfigDataSource,
} from '@temporalio/envconfig';
import { z } from 'zod';
import { ClusterGuardError } from '../contracts/errors.js';
import { readConfig } from './invalid-config.js';

/** A profile's TLS: PEM material as a file or inline (`*_data`), never both. */
export interface ProfileTls {
  /** `disabled = true` in the profile: no TLS even with an API key. */
  disabled?: boolean;
  certFile?: string;
  certData?: string;
  keyFile?: string;
  keyData?: string;
  caFile?: string;
  caData?: string;
  serverName?: string;
}

/** What a profile says about the connection, in clusterguard's names. */
export interface ConnectionProfile {
  address?: string;
  namespace?: string;
  apiKey?: string;
  tls?: ProfileTls;
  /** gRPC headers sent with every call (`grpc_meta`). */
  grpcMeta?: Record<string, string>;
}

export interface LoadedProfile {
  /** The TOML file read (absolute). */
  file: string;
  /** The profile's name. */
  name: string;
  /** Undefined when an unnamed `default` profile is absent (the CLI then has nothing to add). */
  settings?: ConnectionProfile;
}

export interface LoadProfileOptions {
  /** The profile; `default` when only a file is named. */
  profile?: string;
  /** The TOML file; else `$TEMPORAL_CONFIG_FILE`, else the `temporal` CLI's default path. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Refuse an absent profile even when it was not named (the `default` of a named file). */
  requireProfile?: boolean;
  /** How the operator names the file, for the messages: `temporal.configFile`, `--config-file`. */
  fileSetting?: string;
}

export const defaultProfileName = 'default';

/**
 * The `temporal` CLI's own file: `$TEMPORAL_CONFIG_FILE`, else `temporalio/temporal.toml` under
 * the user's config folder (the same rules as `@temporalio/envconfig`, so both read one file).
 */
export function defaultTemporalConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPORAL_CONFIG_FILE) return env.TEMPORAL_CONFIG_FILE;
  const home = env.HOME || os.homedir();
  let base: string;
  if (process.platform === 'win32') base = env.APPDATA || path.join(home, 'AppData', 'Roaming');
  else if (process.platform === 'darwin') base = path.join(home, 'Library', 'Application Support');
  else
    base =
      env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME)
        ? env.XDG_CONFIG_HOME
        : path.join(home, '.config');
  return path.join(base, 'temporalio', 'temporal.toml');
}

const dataSource = z.union([
  z.object({ path: z.string().min(1) }),
  z.object({ data: z.instanceof(Uint8Array) }),
]);

// envconfig converts the TOML without checking its types; this catches `address = 7233` & co.
const profileSchema = z.object({
  address: z.string().min(1).optional(),
  namespace: z.string().min(1).optional(),
  apiKey: z.string().min(1).optional(),
  tls: z
    .object({
      disabled: z.boolean().optional(),
      serverName: z.string().min(1).optional(),
      clientCert: dataSource.optional(),
      clientKey: dataSource.optional(),
      serverCACert: dataSource.optional(),
    })
    .optional(),
  grpcMeta: z.record(z.string(), z.string()).optional(),
});

function fileOrData(
  source: ConfigDataSource | undefined,
  file: 'certFile' | 'keyFile' | 'caFile',
  data: 'certData' | 'keyData' | 'caData',
): Partial<ProfileTls> {
  if (!source) return {};
  if ('path' in source) return { [file]: source.path };
  const text = typeof source.data === 'string' ? source.data : Buffer.from(source.data).toString();
  return { [data]: text };
}

function toConnectionProfile(p: ClientConfigProfile): ConnectionProfile {
  const t = p.tls;
  const tls: ProfileTls | undefined = t && {
    ...(t.disabled !== undefined ? { disabled: t.disabled } : {}),
    ...(t.serverName ? { serverName: t.serverName } : {}),
    ...fileOrData(t.clientCert, 'certFile', 'certData'),
    ...fileOrData(t.clientKey, 'keyFile', 'keyData'),
    ...fileOrData(t.serverCACert, 'caFile', 'caData'),
  };
  return {
    ...(p.address ? { address: p.address } : {}),
    ...(p.namespace ? { namespace: p.namespace } : {}),
    ...(p.apiKey ? { apiKey: p.apiKey } : {}),
    ...(tls ? { tls } : {}),
    ...(p.grpcMeta && Object.keys(p.grpcMeta).length > 0 ? { grpcMeta: p.grpcMeta } : {}),
  };
}

/**
 * Reads one profile from the `temporal` CLI's TOML file. Only the file is read: the
 * `TEMPORAL_ADDRESS`-style variables that envconfig would also apply are left to the caller
 * (the processes take `CG_TEMPORAL__*`, the CLI applies them above the profile itself).
 * Every failure is an `InvalidConfig` error naming the file and the profile.
 */
export function loadConnectionProfile(options: LoadProfileOptions): LoadedProfile {
  const env = options.env ?? process.env;
  const name = options.profile ?? defaultProfileName;
  const file = path.resolve(options.configFile ?? defaultTemporalConfigFile(env));
  const fileSetting = options.fileSetting ?? 'the config file setting';
  const what = `the Temporal config file ${file} (profile "${name}")`;

  const text = readConfig(
    () => readFileSync(file, 'utf8'),
    (reason) =>
      `cannot read ${what}: ${reason}; create the profile with ` +
      `\`temporal config set --profile ${name} --prop address --value <host:port>\` ` +
      `or point ${fileSetting} at the right file`,
  );

  let config: ClientConfig;
  try {
    config = loadClientConfig({ configSource: { data: text } });
  } catch (err) {
    // envconfig converts `profile.<name>` tables; a file without any (an empty file) makes it
    // call Object.entries(undefined), a TypeError: that is "no profiles", not a broken file.
    if (err instanceof TypeError) config = { profiles: {} };
    else {
      // The TOML parser's error carries the line it stopped at.
      const line = (err as { line?: unknown }).line;
      throw new ClusterGuardError(
        'InvalidConfig',
        `${what} is not valid${typeof line === 'number' ? ` at line ${line}` : ''}: ` +
          `${(err as Error).message}; fix it or rewrite it with \`temporal config set\``,
      );
    }
  }

  const raw = Object.hasOwn(config.profiles, name) ? config.profiles[name] : undefined;
  if (!raw) {
    if (options.profile === undefined && !options.requireProfile) return { file, name };
    const known = Object.keys(config.profiles);
    throw new ClusterGuardError(
      'InvalidConfig',
      `${what}: there is no profile "${name}" (the file has ${
        known.length ? known.map((k) => `"${k}"`).join(', ') : 'no profiles'
      }); name one of those or create it with ` +
        `\`temporal config set --profile ${name} --prop address --value <host:port>\``,
    );
  }
  const checked = profileSchema.safeParse(raw);
  if (!checked.success) {
    const issues = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ClusterGuardError('InvalidConfig', `${what} is not valid: ${issues.join('; ')}`);
  }
  return { file, name, settings: toConnectionProfile(raw) };
}

// --- the processes: `temporal.profile` under `temporal.*` -----------------------------------

type Raw = Record<string, unknown>;
const isRecord = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const booleanSetting = z.stringbool().or(z.boolean());

/** The profile's TLS in `temporal.tls` form: `false`, `true` (system CAs) or the fields. */
function profileTlsSetting(t: ProfileTls): Raw | boolean {
  if (t.disabled) return false;
  const fields = Object.fromEntries(
    Object.entries(t).filter(([k, v]) => k !== 'disabled' && v !== undefined),
  );
  // A `[profile.x.tls]` table with nothing in it still means TLS, as in envconfig.
  return Object.keys(fields).length > 0 ? fields : true;
}

/**
 * `temporal.tls` over the profile's: `false` turns TLS off; `true` keeps the profile's files (or
 * the system CAs); an object replaces the profile's fields one by one, the client certificate
 * and key as a pair, a file and inline data of the same item as one.
 */
function mergeTls(own: unknown, fromProfile: Raw | boolean): unknown {
  if (own === undefined) return fromProfile;
  if (isRecord(own)) {
    if (!isRecord(fromProfile)) return own;
    const base = { ...fromProfile };
    const has = (...keys: string[]) => keys.some((k) => own[k] !== undefined);
    if (has('certFile', 'certData', 'keyFile', 'keyData'))
      for (const k of ['certFile', 'certData', 'keyFile', 'keyData']) delete base[k];
    if (has('caFile', 'caData')) for (const k of ['caFile', 'caData']) delete base[k];
    return { ...base, ...own };
  }
  const on = booleanSetting.safeParse(own);
  // Not a boolean: left as given so that the schema reports it.
  if (!on.success || !on.data) return own;
  return isRecord(fromProfile) ? fromProfile : own;
}

/** The raw `temporal:` settings with the profile's values under the ones set explicitly. */
export function mergeProfileInto(raw: Raw, profile: ConnectionProfile): Raw {
  const out: Raw = { ...raw };
  for (const key of ['address', 'namespace', 'apiKey'] as const) {
    if (out[key] === undefined && profile[key] !== undefined) out[key] = profile[key];
  }
  if (profile.tls) out.tls = mergeTls(out.tls, profileTlsSetting(profile.tls));
  if (profile.grpcMeta)
    out.grpcMeta = { ...profile.grpcMeta, ...(isRecord(out.grpcMeta) ? out.grpcMeta : {}) };
  return out;
}

/**
 * The zod preprocess step of `temporal:` in the app config. It runs on the settings as given,
 * before the schema's defaults, so "set by the operator" is simply "present": the profile fills
 * what is absent, the defaults what is still absent after it. Doing it while the config is
 * parsed (not when connecting) also gives the workers the profile's namespace and the startup
 * log the profile's address. Without `profile` or `configFile`, nothing is read.
 */
export function applyTemporalProfile(raw: unknown, ctx: z.core.$RefinementCtx): unknown {
  if (!isRecord(raw)) return raw;
  const named = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const profile = named(raw.profile);
  const configFile = named(raw.configFile);
  if (profile === undefined && configFile === undefined) return raw;
  try {
    const loaded = loadConnectionProfile({
      ...(profile ? { profile } : {}),
      ...(configFile ? { configFile } : {}),
      requireProfile: true,
      fileSetting: 'temporal.configFile (CG_TEMPORAL__CONFIG_FILE)',
    });
    return loaded.settings ? mergeProfileInto(raw, loaded.settings) : raw;
  } catch (err) {
    if (!(err instanceof ClusterGuardError)) throw err;
    ctx.addIssue({
      code: 'custom',
      message: err.message,
      path: [profile ? 'profile' : 'configFile'],
      input: raw,
    });
    return raw;
  }
}
