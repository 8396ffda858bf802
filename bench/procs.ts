import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { repoRoot } from '../src/process.js';
import { assertPortFree, freePort } from '../src/temporal/dev-server.js';
import { parseRssMiB } from './lib.js';

/** RSS of a live process, in MiB. */
export async function rssMiB(pid: number | undefined): Promise<number> {
  if (!pid) throw new Error('no pid: the process did not start');
  return parseRssMiB(await readFile(`/proc/${pid}/status`, 'utf8'));
}

/** A port free on every one of `hosts` (agents of a cluster share one port). */
export async function portFreeOnAll(hosts: readonly string[]): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const port = await freePort(hosts[0]);
    try {
      for (const h of hosts.slice(1)) await assertPortFree(h, port, 'bench agent');
      return port;
    } catch {
      // taken on another address: try another
    }
  }
  throw new Error(`no port is free on all of ${hosts[0]}…${hosts.at(-1)}`);
}

/** Every child's output goes to one log file, so that the bench's own output stays JSON. */
export function logSink(file: string): {
  stream: WriteStream;
  line: (label: string) => (l: string) => void;
} {
  const stream = createWriteStream(file, { flags: 'a' });
  return { stream, line: (label) => (l) => stream.write(`[${label}] ${l}\n`) };
}

export interface TsChild {
  process: ResultPromise;
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** A `node --import tsx <entry> …args` child whose lines go to `onLine`. */
export function spawnTsChild(
  entry: string,
  args: string[],
  onLine: (line: string) => void,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): TsChild {
  const argv = [...nodeArgs, '--import', 'tsx', path.join(repoRoot, entry), ...args];
  const child = execa(process.execPath, argv, {
    cwd: repoRoot,
    env,
    all: true,
    buffer: false,
    reject: false,
    cleanup: true,
    forceKillAfterDelay: 10_000,
  });
  const waiters = new Set<{ pattern: RegExp; done: () => void }>();
  let pending = '';
  child.all?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      onLine(line);
      for (const w of waiters) if (w.pattern.test(line)) w.done();
    }
  });
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  return {
    process: child,
    waitForLine(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`${entry}: no line matching ${pattern} within ${timeoutMs} ms`));
        }, timeoutMs);
        const w = {
          pattern,
          done: () => {
            clearTimeout(timer);
            waiters.delete(w);
            resolve();
          },
        };
        waiters.add(w);
        void child.then(() => {
          clearTimeout(timer);
          if (waiters.delete(w)) reject(new Error(`${entry} exited before printing ${pattern}`));
        });
      });
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await child;
    },
  };
}
