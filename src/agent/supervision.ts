import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';

/**
 * What the node agent's supervisor (src/agent/supervisor.ts) must know about each server beside
 * whether it runs (docs/design.md, "Self-healing node"): whether a runbook holds it stopped on
 * purpose, and whether the supervisor gave up on it. Kept in `conf/supervision.json`, so that
 * neither survives as a surprise across an agent restart: a server a runbook stopped stays
 * stopped until a runbook starts it again, and one that kept dying is not tried again in a loop.
 */
export interface ServerRecord {
  /** A runbook operation stopped it, or may have, and has not started it again. */
  heldBy?: { operation: string; since: string };
  /** The supervisor gave up on it after this many failed starts in a row. */
  gaveUp?: { at: string; failures: number; error: string };
}

/** Operations that only read: they neither stop a server nor leave it stopped. */
const readOnlyOperations = new Set([
  'checkServer',
  'inspect',
  'checkInSync',
  'exportData',
  'backupData',
  'prepareClusterConfig',
]);

/**
 * Operations meant to leave the server stopped: a stop, and a decommission that removes this
 * node. Any other operation means to leave it running, so a server found stopped after one (it
 * failed, or the server was killed under it) is not held: the runbook retries its own work, and
 * the supervisor meanwhile restarts what is set up.
 */
const stoppingOperations = new Set(['stopServer', 'decommissionCluster']);

export class Supervision {
  private records: Record<string, ServerRecord> | undefined;
  private readonly inFlight = new Map<string, number>();
  private readonly ownStarts = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly logger: Logger,
  ) {}

  static forConfFolder(confFolder: string, logger: Logger): Supervision {
    return new Supervision(path.join(confFolder, 'supervision.json'), logger);
  }

  private async all(): Promise<Record<string, ServerRecord>> {
    if (!this.records) {
      try {
        const parsed: unknown = JSON.parse(await readFile(this.file, 'utf8'));
        this.records =
          typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
            ? (parsed as Record<string, ServerRecord>)
            : {};
      } catch {
        this.records = {};
      }
    }
    return this.records;
  }

  private async change(server: string, next: ServerRecord): Promise<void> {
    const records = await this.all();
    if (next.heldBy || next.gaveUp) records[server] = next;
    else delete records[server];
    const text = `${JSON.stringify(records, null, 2)}\n`;
    const write = async () => {
      const temp = `${this.file}.${randomUUID()}.tmp`;
      await writeFile(temp, text);
      await rename(temp, this.file);
    };
    this.writes = this.writes.then(write, write);
    await this.writes;
  }

  async record(server: string): Promise<ServerRecord> {
    return { ...(await this.all())[server] };
  }

  /** A runbook operation on this server is running now: the supervisor keeps its hands off. */
  busy(server: string): boolean {
    return (this.inFlight.get(server) ?? 0) > 0;
  }

  /**
   * Runs a runbook's operation on one server. While it runs the supervisor does nothing to that
   * server (a start of its own is aborted first). Afterwards a stop or a decommission that left
   * the server stopped holds it stopped until an operation leaves it running, which also clears a
   * give-up; any other operation releases it, whether the server runs or not.
   */
  async runbookOperation<T>(
    server: string,
    operation: string,
    run: () => Promise<T>,
    isRunning: () => Promise<boolean>,
  ): Promise<T> {
    // One that only reads leaves the supervisor free: a backup that waits for a killed
    // ZooKeeper to serve again must not keep the supervisor from starting it.
    if (readOnlyOperations.has(operation)) return run();
    this.inFlight.set(server, (this.inFlight.get(server) ?? 0) + 1);
    try {
      const own = this.ownStarts.get(server);
      if (own) {
        own.abort.abort(new Error(`a runbook runs ${operation}`));
        await own.done;
      }
      await this.change(server, { heldBy: { operation, since: new Date().toISOString() } });
      try {
        return await run();
      } finally {
        const running = await isRunning().catch(() => false);
        if (running || !stoppingOperations.has(operation)) await this.change(server, {});
        else this.logger.info('server held stopped by a runbook', { server, operation });
      }
    } finally {
      this.inFlight.set(server, (this.inFlight.get(server) ?? 1) - 1);
    }
  }

  /** The supervisor's own start: aborted when a runbook operation on the server begins. */
  async ownStart<T>(server: string, start: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    const run = start(abort.signal);
    const done = run.then(
      () => undefined,
      () => undefined,
    );
    this.ownStarts.set(server, { abort, done });
    try {
      return await run;
    } finally {
      this.ownStarts.delete(server);
    }
  }

  async giveUp(server: string, failures: number, error: string): Promise<void> {
    const current = await this.record(server);
    await this.change(server, {
      ...current,
      gaveUp: { at: new Date().toISOString(), failures, error },
    });
  }
}
