import { z } from 'zod';
import { ClusterGuardError } from '../../contracts/errors.js';
import type { CockroachDatabase } from './options.js';

/* Pure: start arguments, the CLI's outputs parsed, SQL quoting, CSV. */

export interface CockroachStartSpec {
  address: string;
  sqlPort: number;
  httpPort: number;
  insecure: boolean;
  certsDir: string;
  storeDir: string;
  logDir: string;
  externalIoDir: string;
  /** Member addresses; every member's SQL port is `sqlPort`. */
  join: readonly string[];
  cache: string;
  maxSqlMemory: string;
}

/**
 * `cockroach start …` for a supervised foreground server (no --background: the supervisor
 * detaches it and owns its pid file). Every listener is bound to the node's own address so that
 * several nodes can share a machine.
 */
export function cockroachStartArgs(spec: CockroachStartSpec): string[] {
  for (const folder of [spec.storeDir, spec.certsDir, spec.logDir, spec.externalIoDir]) {
    // --store takes a comma-separated list of attributes.
    if (folder.includes(','))
      throw new ClusterGuardError(
        'InvalidConfig',
        `CockroachDB folders cannot contain commas: ${folder}`,
      );
  }
  if (spec.join.length === 0) {
    throw new ClusterGuardError(
      'InvalidInput',
      'cockroach start needs at least one --join address',
    );
  }
  return [
    'start',
    spec.insecure ? '--insecure' : `--certs-dir=${spec.certsDir}`,
    `--store=path=${spec.storeDir}`,
    `--listen-addr=${spec.address}:${spec.sqlPort}`,
    `--http-addr=${spec.address}:${spec.httpPort}`,
    `--join=${spec.join.map((n) => `${n}:${spec.sqlPort}`).join(',')}`,
    `--cache=${spec.cache}`,
    `--max-sql-memory=${spec.maxSqlMemory}`,
    // nodelocal:// URLs of BACKUP and RESTORE resolve here, and nowhere else.
    `--external-io-dir=${spec.externalIoDir}`,
    // The old guard service (docs/design.md): logs live in node-data/cockroach/log, not inside the store that join wipes.
    `--log-dir=${spec.logDir}`,
  ];
}

/** One row of `cockroach node status --format=json [--decommission]` (docs/design.md, CockroachCluster). */
export interface CockroachNodeStatus {
  id: number;
  /** `host:port` the node advertises; missing for nodes that left gossip long ago. */
  address?: string;
  host?: string;
  port?: number;
  sqlAddress?: string;
  /** The build tag, e.g. `v25.2.0` (the old guard service's `version`). */
  build?: string;
  startedAt?: string;
  updatedAt?: string;
  locality?: string;
  isAvailable?: boolean;
  isLive: boolean;
  /** With --ranges: ranges this node leases that lack replicas / have no quorum. */
  rangesUnderReplicated?: number;
  rangesUnavailable?: number;
  /** With --decommission: replicas the node still holds, per gossip. */
  replicas?: number;
  isDecommissioning?: boolean;
  /** With --decommission: `active`, `decommissioning` or `decommissioned`. */
  membership?: string;
  isDraining?: boolean;
}

const boolString = z.enum(['true', 'false']).transform((v) => v === 'true');
const countString = z
  .string()
  .regex(/^\d+$/)
  .transform((v) => Number(v));
// The CLI prints every value as a string (clisqlexec's JSON reporter), SQL NULL as "NULL".
const statusRowSchema = z.object({
  id: countString,
  address: z.string().optional(),
  sql_address: z.string().optional(),
  build: z.string().optional(),
  started_at: z.string().optional(),
  updated_at: z.string().optional(),
  locality: z.string().optional(),
  is_available: boolString.optional(),
  is_live: boolString.optional(),
  gossiped_replicas: countString.optional(),
  ranges_underreplicated: countString.optional(),
  ranges_unavailable: countString.optional(),
  is_decommissioning: boolString.optional(),
  membership: z.string().optional(),
  is_draining: boolString.optional(),
});
const statusOutputSchema = z.array(z.record(z.string(), z.string()));

function splitHostPort(address: string): { host: string; port?: number } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address);
  return m?.[1] !== undefined ? { host: m[1], port: Number(m[2]) } : { host: address };
}

/** Parses the stdout of `cockroach node status --format=json [--decommission]`. */
export function parseNodeStatus(stdout: string): CockroachNodeStatus[] {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `cockroach node status printed something other than JSON: ${stdout.slice(0, 200)}`,
    );
  }
  const rows = statusOutputSchema.safeParse(json);
  if (!rows.success) {
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `cockroach node status printed JSON that is not an array of string-valued rows: ${rows.error.message}`,
    );
  }
  return rows.data.map((raw) => {
    const present = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== 'NULL'));
    const row = statusRowSchema.safeParse(present);
    if (!row.success) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `unexpected row in cockroach node status: ${JSON.stringify(raw)}: ${row.error.message}`,
      );
    }
    const r = row.data;
    const hp = r.address ? splitHostPort(r.address) : undefined;
    const status: CockroachNodeStatus = { id: r.id, isLive: r.is_live ?? false };
    const optional: Partial<CockroachNodeStatus> = {
      address: r.address,
      host: hp?.host,
      port: hp?.port,
      sqlAddress: r.sql_address,
      build: r.build,
      startedAt: r.started_at,
      updatedAt: r.updated_at,
      locality: r.locality,
      isAvailable: r.is_available,
      replicas: r.gossiped_replicas,
      rangesUnderReplicated: r.ranges_underreplicated,
      rangesUnavailable: r.ranges_unavailable,
      isDecommissioning: r.is_decommissioning,
      membership: r.membership,
      isDraining: r.is_draining,
    };
    for (const [k, v] of Object.entries(optional)) {
      if (v !== undefined) Object.assign(status, { [k]: v });
    }
    return status;
  });
}

/** What CockroachDB's decommission pre-flight check printed when it refused. */
export interface DecommissionRefusal {
  blocked: { nodeId: number; replicas: number; error: string }[];
  /** The CLI reports at most five errors and then says there were more. */
  more: boolean;
}

/**
 * Recognises the pre-flight refusal of `cockroach node decommission` (pkg/cli/node.go:
 * `ranges blocking decommission detected`, `nN has R replicas blocked with error: "…"`,
 * `ERROR: Cannot decommission nodes.`); undefined for any other output.
 */
export function parseDecommissionRefusal(output: string): DecommissionRefusal | undefined {
  if (!/ranges blocking decommission detected|Cannot decommission nodes/.test(output)) {
    return undefined;
  }
  const blocked = [
    ...output.matchAll(/^n(\d+) has (\d+) replicas blocked with error: "(.*)"\s*$/gm),
  ].map((m) => ({ nodeId: Number(m[1]), replicas: Number(m[2]), error: m[3] ?? '' }));
  return { blocked, more: /more blocking errors detected/.test(output) };
}

/** One sentence for an operator, naming nodes by id and address. */
export function describeDecommissionRefusal(
  refusal: DecommissionRefusal,
  hostsById: ReadonlyMap<number, string> = new Map(),
): string {
  if (refusal.blocked.length === 0)
    return "CockroachDB's pre-flight check refused the decommission";
  const parts = refusal.blocked.map((b) => {
    const host = hostsById.get(b.nodeId);
    return `n${b.nodeId}${host ? ` (${host})` : ''} has ${b.replicas} replicas that cannot move: ${b.error}`;
  });
  return `CockroachDB's pre-flight check refused: ${parts.join('; ')}${refusal.more ? '; and more' : ''}`;
}

export interface DecommissionProgress {
  nodeId: number;
  replicas: number;
  membership: string;
  isLive?: boolean;
}

/**
 * The rows of the last status table that `cockroach node decommission` printed (tsv, csv or the
 * ASCII table, depending on --format and whether stdout is a terminal).
 */
export function parseDecommissionProgress(output: string): DecommissionProgress[] {
  const lines = output.split('\n');
  let last: DecommissionProgress[] = [];
  for (let i = 0; i < lines.length; i++) {
    const header = lines[i] ?? '';
    if (!/\breplicas\b/.test(header) || !/\bmembership\b/.test(header)) continue;
    const sep = header.includes('\t') ? '\t' : header.includes('|') ? '|' : ',';
    const columns = header.split(sep).map((c) => c.trim());
    const rows: DecommissionProgress[] = [];
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j] ?? '';
      if (/^[-+\s]+$/.test(line) && line.includes('-')) continue;
      const cells = line.split(sep).map((c) => c.trim());
      if (cells.length !== columns.length || !/^\d+$/.test(cells[0] ?? '')) break;
      const get = (name: string) => cells[columns.indexOf(name)];
      rows.push({
        nodeId: Number(get('id')),
        replicas: Number(get('replicas')),
        membership: get('membership') ?? 'unknown',
        isLive: get('is_live') === undefined ? undefined : get('is_live') === 'true',
      });
    }
    if (rows.length) last = rows;
  }
  return last;
}

/** A double-quoted SQL identifier. */
export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
/** A single-quoted SQL string literal. */
export const quoteLiteral = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * The statements that create the configured databases and users and (re)set the passwords.
 * Contains the passwords: send it on stdin, never log it.
 */
export function provisioningSql(databases: readonly CockroachDatabase[]): string {
  return databases
    .flatMap((d) => [
      `CREATE DATABASE IF NOT EXISTS ${quoteIdent(d.name)};`,
      `CREATE USER IF NOT EXISTS ${quoteIdent(d.username)};`,
      `ALTER USER ${quoteIdent(d.username)} WITH PASSWORD ${quoteLiteral(d.password)};`,
      `GRANT ALL ON DATABASE ${quoteIdent(d.name)} TO ${quoteIdent(d.username)};`,
    ])
    .join('\n');
}

/** Replaces every secret (as typed, and as quoted in SQL) with `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of [quoteLiteral(secret).slice(1, -1), secret])
      out = out.split(form).join('***');
  }
  return out;
}

/** Minimal RFC 4180 reader for `--format=csv` output. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else if (c !== '\r') cell += c;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}

export const nodelocalUri = (nodeId: number, folder: string) => `nodelocal://${nodeId}/${folder}`;
