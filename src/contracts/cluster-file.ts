import { z } from 'zod';
import { nodeAddressSchema, nodeListSchema } from './addresses.js';
import { ClusterGuardError } from './errors.js';

/**
 * `<root>/conf/cluster.json` (docs/design.md): the membership a node believes in.
 *
 * Reading is tolerant, writing is canonical:
 * - `datetime` loads as ISO-8601, as the old service's `Wed Oct 24 2018 11:19:25 GMT+0800`, or
 *   as Jackson's default epoch milliseconds; the parsed value always holds an ISO-8601 string
 *   (JSON- and Temporal-payload-safe), so the next write is ISO-8601.
 * - The ready flags may be absent or `null` (Jackson writes unset `Boolean`s as null): false.
 * - History entries come in two shapes (docs/design.md, `{datetime, cluster: [...]}` and the old guard service (docs/design.md)
 *   `{datetime, nodes, decommissionNodes}`) and are normalised to the second one plus `reason`.
 * - Unknown keys of the top-level object and of `cluster` are kept, so fields written by the
 *   old service or a newer clusterguard (e.g. `uuid`, `currentNode`) survive our rewrites.
 *   Unknown keys inside history entries are dropped: history is normalised, read-only record.
 */

/** The address of a node that has never joined a cluster (docs/design.md). */
export const standaloneAddress = '127.0.0.1';

const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const months = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

// `Wed Oct 24 2018 11:19:25 GMT+0800 (China Standard Time)`: JavaScript's Date#toString, which
// is what the old service stored. The zone name suffix is informational only; the offset rules.
const legacyPattern =
  /^([a-z]{3}) ([a-z]{3}) (\d{1,2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT([+-])(\d{2}):?(\d{2})(?: \([^()]*\))?$/i;

// Requires an explicit offset: a zone-less date-time would be read in the host's local zone,
// so the same file would mean different instants on differently configured nodes.
const isoPattern =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)$/i;

interface DateParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
  offsetMinutes: number;
}

/** Builds the instant by hand (never `Date.parse`, whose leniency differs between engines). */
function instantOf(p: DateParts): Date | undefined {
  if (p.hour > 23 || p.minute > 59 || p.second > 59) return undefined;
  if (Math.abs(p.offsetMinutes) > 14 * 60) return undefined;
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  date.setUTCFullYear(p.year, p.month - 1, p.day);
  // Rolled-over fields (Feb 30 → Mar 2) mean the input named a day that does not exist.
  if (date.getUTCMonth() !== p.month - 1 || date.getUTCDate() !== p.day) return undefined;
  date.setUTCHours(p.hour, p.minute, p.second, p.millisecond);
  const time = date.getTime() - p.offsetMinutes * 60_000;
  return Number.isNaN(time) ? undefined : new Date(time);
}

function offsetMinutes(sign: string, hours: string, minutes: string): number {
  return (sign === '-' ? -1 : 1) * (Number(hours) * 60 + Number(minutes));
}

/**
 * Parses the old service's date format, e.g. `Wed Oct 24 2018 11:19:25 GMT+0800` with an
 * optional ` (China Standard Time)` suffix. The weekday must be a weekday name but is not
 * checked against the date: the date fields are authoritative, and a hand-edited file with a
 * stale weekday should not make a node refuse to start.
 */
export function parseLegacyDate(s: string): Date | undefined {
  const m = legacyPattern.exec(s.trim());
  if (!m) return undefined;
  const [, weekday = '', month = '', day = '', year = '', hh = '', mm = '', ss = ''] = m;
  const [sign = '+', offH = '', offM = ''] = m.slice(8);
  if (!weekdays.includes(weekday.toLowerCase())) return undefined;
  const monthIndex = months.indexOf(month.toLowerCase());
  if (monthIndex < 0) return undefined;
  return instantOf({
    year: Number(year),
    month: monthIndex + 1,
    day: Number(day),
    hour: Number(hh),
    minute: Number(mm),
    second: Number(ss),
    millisecond: 0,
    offsetMinutes: offsetMinutes(sign, offH, offM),
  });
}

/** Parses an ISO-8601 date-time with an explicit offset (`Z`, `+08:00`, `+0800`, `+08`). */
export function parseIsoDateTime(s: string): Date | undefined {
  const m = isoPattern.exec(s.trim());
  if (!m) return undefined;
  const [, year = '', month = '', day = '', hh = '', mm = '', ss = '0', fraction = '0'] = m;
  const zone = (m[8] ?? 'Z').toUpperCase();
  const offset =
    zone === 'Z'
      ? 0
      : offsetMinutes(zone.charAt(0), zone.slice(1, 3), zone.slice(3).replace(':', '') || '0');
  return instantOf({
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hour: Number(hh),
    minute: Number(mm),
    second: Number(ss),
    millisecond: Number(fraction.padEnd(3, '0').slice(0, 3)),
    offsetMinutes: offset,
  });
}

/**
 * Any `datetime` that a cluster file may hold: ISO-8601, the old service's format, or epoch
 * milliseconds (Jackson's default when dates are not formatted).
 */
export function parseClusterDatetime(value: unknown): Date | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? new Date(value) : undefined;
  }
  if (typeof value !== 'string') return undefined;
  return parseIsoDateTime(value) ?? parseLegacyDate(value);
}

const datetimeSchema = z.unknown().transform((value, ctx) => {
  const date = parseClusterDatetime(value);
  if (date) return date.toISOString();
  ctx.addIssue({
    code: 'custom',
    message:
      'expected an ISO-8601 date-time with offset (2018-10-24T03:19:25.000Z) or a date like ' +
      '"Wed Oct 24 2018 11:19:25 GMT+0800"',
  });
  return z.NEVER;
});

const flagSchema = z
  .boolean()
  .nullish()
  .transform((v) => v ?? false);

const addressListSchema = z.array(nodeAddressSchema);

// Duplicates here are harmless (the old service appended), so they are dropped, not refused.
const decommissionListSchema = addressListSchema
  .nullish()
  .transform((list) => [...new Set(list ?? [])]);

/** `cluster`: the current membership and the progress flags of the old guard service (docs/design.md) */
export const clusterStateSchema = z.looseObject({
  datetime: datetimeSchema,
  /** Distinct, at least one; `nodes[0]` is the master (docs/design.md). */
  nodes: nodeListSchema,
  /** Nodes that were members and still have to be (or have been) decommissioned. */
  decommissionNodes: decommissionListSchema,
  clusterConfigReady: flagSchema,
  nodeConfigReady: flagSchema,
  nodeIsMaster: flagSchema,
  nodeIsRejoin: flagSchema,
  /**
   * Stable ZooKeeper `myid` / Kafka `node.id` per member (see assignMemberIds). Written by the
   * membership runbooks; absent in files of the old service, which had no such ids.
   */
  memberIds: z.record(nodeAddressSchema, z.number().int().positive()).optional(),
  /** The highest member id ever given in this cluster, so that ids are never reused. */
  lastMemberId: z.number().int().nonnegative().optional(),
  /** The cluster's Kafka cluster id (22 base64url characters), kept across membership changes. */
  clusterUuid: z.string().optional(),
  /**
   * Which runbook step wrote this state (`<workflow id>/<run id>/<step>`): a step that finds its own
   * revision here has already run, so a retried or replayed write changes nothing.
   */
  revision: z.string().optional(),
});

/** One earlier membership, in either shape the old service wrote (docs/design.md); normalised to `{datetime, nodes, …}`. */
export const historyEntrySchema = z
  .object({
    datetime: datetimeSchema,
    nodes: addressListSchema.nullish(),
    decommissionNodes: addressListSchema.nullish(),
    /** The old guard service's shape (docs/design.md): the member list under `cluster`. */
    cluster: addressListSchema.nullish(),
    reason: z.string().nullish(),
  })
  .transform((entry, ctx) => {
    // When both shapes are present the newer one (`nodes`) wins.
    const nodes = entry.nodes ?? entry.cluster;
    if (!nodes) {
      ctx.addIssue({
        code: 'custom',
        message: 'expected "nodes" (or the old service\'s "cluster") listing the members',
      });
      return z.NEVER;
    }
    const normalised: HistoryEntry = {
      datetime: entry.datetime,
      nodes,
      decommissionNodes: entry.decommissionNodes ?? [],
    };
    if (entry.reason != null) normalised.reason = entry.reason;
    return normalised;
  });

export interface HistoryEntry {
  /** ISO-8601: when this membership was superseded. */
  datetime: string;
  nodes: string[];
  decommissionNodes: string[];
  /** Why it was superseded; absent in files written by the old service. */
  reason?: string;
}

export const clusterFileSchema = z.looseObject({
  cluster: clusterStateSchema,
  /** Oldest first. */
  history: z
    .array(historyEntrySchema)
    .nullish()
    .transform((h) => h ?? []),
});

/** The normalised, JSON-safe content of `cluster.json`. */
export type ClusterFile = z.output<typeof clusterFileSchema>;
export type ClusterState = ClusterFile['cluster'];
/** What may be found on disk (before normalisation). */
export type ClusterFileInput = z.input<typeof clusterFileSchema>;

/**
 * The file a node starts with when it has none (docs/design.md): itself alone, every ready flag
 * set so that it simply starts, no history.
 */
export function defaultClusterFile(now: Date, address = standaloneAddress): ClusterFile {
  if (!nodeAddressSchema.safeParse(address).success) {
    throw new ClusterGuardError('InvalidInput', `"${address}" is not a node address`);
  }
  return clusterFileSchema.parse({
    cluster: {
      datetime: now.toISOString(),
      nodes: [address],
      decommissionNodes: [],
      clusterConfigReady: true,
      nodeConfigReady: true,
      nodeIsMaster: true,
      nodeIsRejoin: true,
    },
    history: [],
  });
}

/** The master is the first node (docs/design.md, `getMasterNode`). */
export function masterOf(file: ClusterFile): string {
  const master = file.cluster.nodes[0];
  // Only a value built by hand can get here: the schema requires at least one node.
  if (master === undefined) {
    throw new ClusterGuardError('InvalidInput', 'the cluster file lists no nodes: no master');
  }
  return master;
}

/**
 * How a file writes its dates (docs/design.md, "The old service's formats we keep"): ISO-8601,
 * the old service's `Wed Oct 24 2018 11:19:25 GMT+0800` at a fixed offset (with the zone name
 * suffix it came with, if any), or epoch milliseconds. A file taken over from the old service is
 * written back the way it came, so that the old service's readers still parse it.
 */
export type ClusterDateFormat =
  | { kind: 'iso' }
  | { kind: 'epoch' }
  | { kind: 'legacy'; offsetMinutes: number; zoneName?: string };

/** The format of one `datetime` value as found on disk; undefined when it is none of them. */
export function dateFormatOf(value: unknown): ClusterDateFormat | undefined {
  if (typeof value === 'number') return parseClusterDatetime(value) ? { kind: 'epoch' } : undefined;
  if (typeof value !== 'string') return undefined;
  if (parseIsoDateTime(value)) return { kind: 'iso' };
  const m = legacyPattern.exec(value.trim());
  if (!m || !parseLegacyDate(value)) return undefined;
  const zoneName = /\(([^()]*)\)$/.exec(value.trim())?.[1];
  return {
    kind: 'legacy',
    offsetMinutes: offsetMinutes(m[8] ?? '+', m[9] ?? '0', m[10] ?? '0'),
    ...(zoneName ? { zoneName } : {}),
  };
}

const two = (n: number) => String(n).padStart(2, '0');

/** An ISO-8601 instant in `format`. */
export function formatClusterDatetime(iso: string, format: ClusterDateFormat): string | number {
  const date = new Date(iso);
  if (format.kind === 'epoch') return date.getTime();
  if (format.kind === 'iso') return date.toISOString();
  const local = new Date(date.getTime() + format.offsetMinutes * 60_000);
  const off = Math.abs(format.offsetMinutes);
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const text =
    `${cap(weekdays[local.getUTCDay()] ?? '')} ${cap(months[local.getUTCMonth()] ?? '')} ` +
    `${two(local.getUTCDate())} ${local.getUTCFullYear()} ` +
    `${two(local.getUTCHours())}:${two(local.getUTCMinutes())}:${two(local.getUTCSeconds())} ` +
    `GMT${format.offsetMinutes < 0 ? '-' : '+'}${two(Math.floor(off / 60))}${two(off % 60)}`;
  return format.zoneName ? `${text} (${format.zoneName})` : text;
}

/**
 * Canonical text: normalised by the schema, 2-space indentation, trailing newline; dates in
 * `dateFormat` (default ISO-8601).
 */
export function serializeClusterFile(file: ClusterFile, dateFormat?: ClusterDateFormat): string {
  const parsed = clusterFileSchema.parse(file);
  if (!dateFormat || dateFormat.kind === 'iso') return `${JSON.stringify(parsed, null, 2)}\n`;
  const out = {
    ...parsed,
    cluster: {
      ...parsed.cluster,
      datetime: formatClusterDatetime(parsed.cluster.datetime, dateFormat),
    },
    history: parsed.history.map((h) => ({
      ...h,
      datetime: formatClusterDatetime(h.datetime, dateFormat),
    })),
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

function pathText(path: readonly PropertyKey[]): string {
  let text = '';
  for (const key of path) {
    text += typeof key === 'number' ? `[${key}]` : `${text ? '.' : ''}${String(key)}`;
  }
  return text || '(top level)';
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * One line per issue: `cluster.nodes[2]: expected an IPv4 address … (got "1.2.3")`. With the
 * input at hand the offending value is quoted, because zod does not repeat it.
 */
export function formatIssues(error: z.ZodError, input?: unknown): string {
  return error.issues
    .map((issue) => {
      const value = input === undefined ? undefined : valueAt(input, issue.path);
      const got = value === undefined ? '' : ` (got ${preview(value)})`;
      return `${pathText(issue.path)}: ${issue.message}${got}`;
    })
    .join('; ');
}
