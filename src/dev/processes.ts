import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { repoRoot } from '../process.js';

export interface ChildOptions {
  /** Shown before every output line. */
  label: string;
  /** `CG_*` settings of the child (see src/config/app-config.ts). */
  env: Record<string, string>;
  /** Where the child's output lines go; default: this process's stderr, prefixed. */
  onLine?: (line: string) => void;
}

export interface ChildProcess {
  label: string;
  process: ResultPromise;
  /** Resolves with the first output line matching `pattern`; rejects if the child exits first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * The node agent compiled by setup (dist/agent, scripts/build-cli.mjs) while the files it was
 * built from still hash the same; anything else, and a stale build, runs from source through tsx.
 */
function entryArgs(entry: string): string[] {
  if (entry === 'worker/node-agent.ts') {
    try {
      const dir = path.join(repoRoot, 'dist', 'agent');
      const stamp = JSON.parse(readFileSync(path.join(dir, 'build.json'), 'utf8')) as {
        inputs: string[];
        inputsHash: string;
      };
      const hash = createHash('sha256');
      for (const f of stamp.inputs)
        hash.update(`${f}\0`).update(readFileSync(path.join(repoRoot, f)));
      if (hash.digest('hex') === stamp.inputsHash) return [path.join(dir, 'node-agent.mjs')];
    } catch {
      // not built, or a file of it is gone: from source
    }
  }
  return ['--import', 'tsx', path.join(repoRoot, entry)];
}

function spawnTs(entry: string, options: ChildOptions): ChildProcess {
  const child = execa(process.execPath, entryArgs(entry), {
    cwd: repoRoot,
    env: { ...options.env, CG_LOG_LEVEL: process.env.CG_LOG_LEVEL ?? 'info' },
    all: true,
    buffer: false,
    reject: false,
    cleanup: true,
    forceKillAfterDelay: 10_000,
  });
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  let pending = '';
  let exited = false;
  const exitListeners = new Set<() => void>();
  child.all?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (options.onLine) options.onLine(line);
      else process.stderr.write(`[${options.label}] ${line}\n`);
      for (const w of waiters) {
        if (w.pattern.test(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  void child.then(() => {
    exited = true;
    for (const l of exitListeners) l();
  });
  return {
    label: options.label,
    process: child,
    waitForLine(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        if (exited) return reject(new Error(`${options.label} has exited`));
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          exitListeners.delete(onExit);
          reject(new Error(`${options.label}: no line matching ${pattern} within ${timeoutMs} ms`));
        }, timeoutMs);
        const onExit = () => {
          clearTimeout(timer);
          reject(
            new Error(
              `${options.label} exited (code ${child.exitCode}) before printing ${pattern}`,
            ),
          );
        };
        const waiter = {
          pattern,
          resolve: (line: string) => {
            clearTimeout(timer);
            exitListeners.delete(onExit);
            resolve(line);
          },
        };
        waiters.add(waiter);
        exitListeners.add(onExit);
      });
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await child;
    },
    kill(signal) {
      child.kill(signal);
    },
  };
}

export interface AgentProcessOptions {
  address: string;
  root: string;
  temporalAddress: string;
  namespace?: string;
  tokenFile: string;
  port?: number;
  binDir?: string;
  /** More `CG_*` settings, e.g. `CG_CONFIG` for a YAML file with the middleware options. */
  env?: Record<string, string>;
  onLine?: (line: string) => void;
}

/** A node agent as its own process, so it can be killed and restarted like a real node's. */
export function spawnNodeAgent(options: AgentProcessOptions): ChildProcess {
  return spawnTs('worker/node-agent.ts', {
    label: `agent ${options.address}`,
    onLine: options.onLine,
    env: {
      CG_TEMPORAL__ADDRESS: options.temporalAddress,
      CG_TEMPORAL__NAMESPACE: options.namespace ?? 'default',
      CG_NODE__ADDRESS: options.address,
      CG_NODE__ROOT: options.root,
      CG_AGENT__TOKEN_FILE: options.tokenFile,
      CG_AGENT__PORT: String(options.port ?? 7700),
      CG_MIDDLEWARE__BIN_DIR: options.binDir ?? path.join(repoRoot, '.tools'),
      ...options.env,
    },
  });
}

export interface OrchestratorProcessOptions {
  temporalAddress: string;
  namespace?: string;
  taskQueue?: string;
  env?: Record<string, string>;
  onLine?: (line: string) => void;
  /** Shown before its output lines; default `orchestrator` (there may be more than one). */
  label?: string;
}

export function spawnOrchestrator(options: OrchestratorProcessOptions): ChildProcess {
  return spawnTs('worker/orchestrator.ts', {
    label: options.label ?? 'orchestrator',
    onLine: options.onLine,
    env: {
      CG_TEMPORAL__ADDRESS: options.temporalAddress,
      CG_TEMPORAL__NAMESPACE: options.namespace ?? 'default',
      ...(options.taskQueue ? { CG_TEMPORAL__TASK_QUEUE: options.taskQueue } : {}),
      ...options.env,
    },
  });
}

export const agentReadyLine = /node agent ready/;
export const orchestratorReadyLine = /orchestrator ready/;
