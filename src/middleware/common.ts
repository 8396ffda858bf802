import { cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeLayout } from '../config/layout.js';
import type { Logger } from '../logger.js';
import type { DataResult, InSyncReport, MiddlewareOperation, OperationOptions } from './types.js';

/** What every adapter is built from: the node, its files, where binaries are, its options. */
export interface AdapterDeps<Options> {
  address: string;
  layout: NodeLayout;
  /** Binaries: production `resources/bin` (seed 001 §1); development `.tools`. */
  binDir: string;
  /** The Java runtime for ZooKeeper and Kafka. */
  java?: string;
  options?: Partial<Options>;
  /** Seed 001 §6 operationOptions, per operation; missing ones take the adapter's defaults. */
  operationOptions?: Partial<Record<MiddlewareOperation, Partial<OperationOptions>>>;
  logger: Logger;
  /** Called while an operation waits (an activity passes its heartbeat here). */
  onProgress?: (detail: string) => void;
  signal?: AbortSignal;
}

export function operationOptions(
  defaults: Partial<Record<MiddlewareOperation, OperationOptions>>,
  overrides: AdapterDeps<unknown>['operationOptions'],
  op: MiddlewareOperation,
): OperationOptions {
  return { timeoutMs: 60_000, ...defaults[op], ...overrides?.[op] };
}

/** Empties a folder (keeps the folder itself): join/rejoin wipe data (seed 001 §3). */
export async function wipeFolder(folder: string): Promise<void> {
  await rm(folder, { recursive: true, force: true });
  await mkdir(folder, { recursive: true });
}

/** Writes generated files (relative path → text) under `folder`, replacing what was there. */
export async function writeFiles(folder: string, files: Record<string, string>): Promise<void> {
  await wipeFolder(folder);
  for (const [rel, text] of Object.entries(files)) {
    const target = path.join(folder, rel);
    if (!target.startsWith(folder + path.sep))
      throw new Error(`refusing to write ${rel} outside ${folder}`);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, text);
  }
}

/** Replaces `to` with a copy of `from` (applying a downloaded or generated configuration). */
export async function replaceFolder(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await mkdir(path.dirname(to), { recursive: true });
  await cp(from, to, { recursive: true });
}

/** Every file under `folder` with its size, for a DataResult. */
export async function listData(folder: string): Promise<DataResult> {
  const files: DataResult['files'] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile())
        files.push({ path: path.relative(folder, full), bytes: (await stat(full)).size });
    }
  }
  await walk(folder);
  files.sort((a, b) => a.path.localeCompare(b.path));
  return { folder, files };
}

/**
 * Asks `check` until it reports in sync or `timeoutMs` passed, and returns the last report; a
 * check that throws (a member not answering) counts as not in sync, with its message.
 */
export async function waitInSync(
  check: () => Promise<InSyncReport>,
  o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (detail: string) => void },
): Promise<InSyncReport> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const report = await check().catch((err: unknown): InSyncReport => ({
      inSync: false,
      detail: (err as Error).message,
    }));
    if (report.inSync || Date.now() > deadline) return report;
    o.onProgress?.(report.detail);
    await sleep(1000, undefined, { signal: o.signal });
  }
}
