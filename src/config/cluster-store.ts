import { access, link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  clusterFileSchema,
  dateFormatOf,
  defaultClusterFile,
  type ClusterDateFormat,
  formatIssues,
  serializeClusterFile,
  type ClusterFile,
  type HistoryEntry,
} from '../contracts/cluster-file.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { isErrno, syncDirectory, tempBeside } from '../archive/files.js';

/**
 * History entries kept in `cluster.json`: every update appends one, so without a cap the file
 * would grow for the life of the appliance. The newest entries are kept.
 */
export const historyLimit = 200;

export interface ClusterStoreOptions {
  /** Path of `cluster.json` (`NodeLayout#clusterFile`). */
  file: string;
  now?: () => Date;
  /**
   * How dates are written back (docs/design.md, "The old service's formats we keep"): `as-read`
   * (default) keeps the format the file came in, else always ISO-8601, the old service's
   * format (at the file's offset, or this host's) or epoch milliseconds.
   */
  dateFormat?: DateFormatSetting;
}

export const dateFormatSettings = ['as-read', 'iso', 'legacy', 'epoch'] as const;
export type DateFormatSetting = (typeof dateFormatSettings)[number];

/** The format an update writes, from the setting and the file as it was read. */
export function writtenDateFormat(setting: DateFormatSetting, raw: string): ClusterDateFormat {
  let found: ClusterDateFormat | undefined;
  try {
    const json = JSON.parse(raw.replace(/^\uFEFF/, '')) as { cluster?: { datetime?: unknown } };
    found = dateFormatOf(json.cluster?.datetime);
  } catch {
    found = undefined;
  }
  if (setting === 'as-read') return found ?? { kind: 'iso' };
  if (setting !== 'legacy') return { kind: setting };
  return found?.kind === 'legacy'
    ? found
    : { kind: 'legacy', offsetMinutes: -new Date().getTimezoneOffset() };
}

export type ClusterMutator = (current: ClusterFile) => ClusterFile | Promise<ClusterFile>;

/** Where the copy of the file as it was before the latest update is kept. */
export function lastGoodPath(file: string): string {
  return `${file}.last-good`;
}

// Updates are serialised per file path, not per instance: activities may well build a new
// store per call, and two instances on one file must not lose each other's update. This does
// not reach across processes; one node agent owns its node's file.
const queues = new Map<string, Promise<unknown>>();

function serialised<T>(key: string, task: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(task);
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Writes `text` to a fresh temp file beside `target` and fsyncs it; returns its path. */
async function writeTemp(target: string, text: string): Promise<string> {
  const temp = tempBeside(target, '.tmp');
  const handle = await open(temp, 'wx');
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return temp;
}

/** Replaces `target` with `text`: readers see the old or the new content, never a mix. */
async function replaceAtomically(target: string, text: string): Promise<void> {
  const temp = await writeTemp(target, text);
  try {
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(path.dirname(target));
}

/**
 * Creates `target` with `text` unless it exists; false when it does. A hard link, unlike a
 * rename, never replaces an existing file, so a concurrent creator cannot be overwritten.
 */
async function createAtomically(target: string, text: string): Promise<boolean> {
  await mkdir(path.dirname(target), { recursive: true });
  const temp = await writeTemp(target, text);
  try {
    await link(temp, target);
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  await syncDirectory(path.dirname(target));
  return true;
}

function endsViably(prefix: string): boolean {
  try {
    JSON.parse(prefix);
    return true;
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    const position = /at position (\d+)/.exec(message)?.[1];
    return message.includes('end of JSON input') || Number(position) === prefix.length;
  }
}

/**
 * `line 3, column 7` of the first character that cannot continue valid JSON. V8 names no
 * position for some errors ("Unexpected token"), so the longest prefix that could still become
 * valid JSON is found by bisection (a prefix fails only at its end when it is still viable).
 */
function jsonErrorPlace(text: string): string {
  let good = 0;
  let bad = text.length + 1;
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (endsViably(text.slice(0, mid))) good = mid;
    else bad = mid;
  }
  const lines = text.slice(0, good).split('\n');
  return `line ${lines.length}, column ${(lines.at(-1)?.length ?? 0) + 1}`;
}

/**
 * The `cluster.json` of one node (docs/design.md): created with the standalone default when
 * missing, validated on every read, replaced atomically on every update with the previous
 * version kept at `<file>.last-good`. A file that fails to parse is reported, never replaced.
 */
export class ClusterStore {
  readonly file: string;
  readonly lastGoodFile: string;
  readonly dateFormat: DateFormatSetting;
  private readonly now: () => Date;

  constructor(options: ClusterStoreOptions) {
    this.file = path.resolve(options.file);
    this.dateFormat = options.dateFormat ?? 'as-read';
    this.lastGoodFile = lastGoodPath(this.file);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * The current file; the standalone default (docs/design.md) is created when there is none.
   * Not queued behind updates: writes are atomic renames, so a read sees a whole file.
   */
  async load(): Promise<ClusterFile> {
    return (await this.read()).file;
  }

  /**
   * Applies `mutator` to the current file and writes the result. The membership it replaces
   * is appended to `history` with `reason` (docs/design.md), `cluster.datetime` becomes now.
   * Updates of one file are applied one at a time; `mutator` must not call this store's
   * `update` (it would wait for itself).
   */
  async update(mutator: ClusterMutator, reason: string): Promise<ClusterFile> {
    const why = reason.trim();
    if (!why) throw new ClusterGuardError('InvalidInput', 'a cluster file update needs a reason');
    return serialised(this.file, async () => {
      const { file: current, raw } = await this.read();
      const changed: unknown = await mutator(structuredClone(current));
      const next = this.validNext(this.withHistory(current, changed, why), why);
      // The bytes just validated, not a fresh copy of the file: what is kept is known good.
      await replaceAtomically(this.lastGoodFile, raw);
      await replaceAtomically(
        this.file,
        serializeClusterFile(next, writtenDateFormat(this.dateFormat, raw)),
      );
      return next;
    });
  }

  private withHistory(current: ClusterFile, changed: unknown, why: string): unknown {
    if (!isRecord(changed) || !isRecord(changed.cluster)) return changed;
    const datetime = this.now().toISOString();
    const entry: HistoryEntry = {
      datetime,
      nodes: [...current.cluster.nodes],
      decommissionNodes: [...current.cluster.decommissionNodes],
      reason: why,
    };
    const history = Array.isArray(changed.history) ? (changed.history as unknown[]) : [];
    return {
      ...changed,
      cluster: { ...changed.cluster, datetime },
      history: [...history, entry].slice(-historyLimit),
    };
  }

  private validNext(candidate: unknown, why: string): ClusterFile {
    const result = clusterFileSchema.safeParse(candidate);
    if (result.success) return result.data;
    throw new ClusterGuardError(
      'InvalidInput',
      `The update "${why}" would make ${this.file} invalid, so nothing was written: ` +
        formatIssues(result.error, candidate),
    );
  }

  private async read(createIfMissing = true): Promise<{ file: ClusterFile; raw: string }> {
    let raw: string;
    try {
      raw = await readFile(this.file, 'utf8');
    } catch (error) {
      if (!isErrno(error, 'ENOENT') || !createIfMissing) throw error;
      const text = serializeClusterFile(defaultClusterFile(this.now()));
      await createAtomically(this.file, text);
      // Whether this call or a concurrent one created it, the file on disk is the truth.
      return this.read(false);
    }
    return { file: await this.parse(raw), raw };
  }

  private async parse(raw: string): Promise<ClusterFile> {
    const text = raw.replace(/^\uFEFF/, '');
    if (text.trim() === '') {
      throw await this.corrupt('the file is empty (an interrupted write by an earlier tool?)');
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw await this.corrupt(`it is not valid JSON at ${jsonErrorPlace(text)}: ${message}`);
    }
    const result = clusterFileSchema.safeParse(json);
    if (!result.success) {
      throw await this.corrupt(
        `it does not match the cluster file schema: ${formatIssues(result.error, json)}`,
      );
    }
    return result.data;
  }

  private async corrupt(reason: string): Promise<ClusterGuardError> {
    const next = (await exists(this.lastGoodFile))
      ? `The last good copy is at ${this.lastGoodFile}: check its membership, then restore it ` +
        `with \`cp ${shellQuote(this.lastGoodFile)} ${shellQuote(this.file)}\`, or fix the ` +
        'file by hand.'
      : `There is no last good copy (${this.lastGoodFile}): fix the file by hand, or move it ` +
        'aside to start this node as a new standalone node (it then forgets its cluster).';
    return new ClusterGuardError(
      'CorruptClusterFile',
      `${this.file} is corrupt: ${reason}. It is left untouched. ${next}`,
    );
  }
}
