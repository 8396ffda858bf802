import { spawn } from 'node:child_process';
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterGuardError } from '../../contracts/errors.js';

/**
 * A middleware server run by a node agent. It outlives the agent (detached, its own process
 * group) and is known by its pid file, so an agent restart neither orphans nor duplicates it.
 */
export interface ProcessSpec {
  /** For messages: `zookeeper on 127.0.0.11`. */
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  pidFile: string;
  /** Output of the server (stdout and stderr), appended. */
  logFile: string;
  /**
   * A string that the process's command line contains (e.g. its config path), so that a pid
   * reused by an unrelated process after a reboot is never taken for the server.
   */
  marker: string;
}

export interface StartOptions {
  timeoutMs: number;
  /** The log (written since this start) must match this before readiness is checked. */
  successFilter?: string | RegExp;
  /** A log line matching this fails the start at once. */
  failFilter?: string | RegExp;
  /** Protocol-level readiness, polled after the success filter until it answers true. */
  ready?: () => Promise<boolean>;
  signal?: AbortSignal;
  /** Called while waiting (e.g. to heartbeat). */
  onWait?: (elapsedMs: number) => void;
}

const toRegExp = (f: string | RegExp | undefined) =>
  f === undefined ? undefined : typeof f === 'string' ? new RegExp(f, 'm') : f;

async function commandLine(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
}

/**
 * Whether the process still exists and has not finished exiting. An exiting process loses its
 * command line before it closes its files, and in a multi-threaded server (the JVM, Node) the
 * main thread is a zombie while other threads still hold the sockets: it is gone only when no
 * thread in /proc/<pid>/task is alive.
 */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let tids: string[];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  for (const tid of tids) {
    try {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const state = stat.charAt(stat.lastIndexOf(')') + 2);
      if (state !== 'Z' && state !== 'X' && state !== 'x') return true;
    } catch {
      // that thread is gone
    }
  }
  return false;
}

/** The pid of the running server, or undefined (a stale pid file is removed). */
export async function runningPid(
  spec: Pick<ProcessSpec, 'pidFile' | 'marker'>,
): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(spec.pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (Number.isInteger(pid) && pid > 0 && (await alive(pid))) {
    const cmd = await commandLine(pid);
    // Zombies have an empty command line: they are gone for our purposes.
    if (cmd && cmd.includes(spec.marker)) return pid;
  }
  await rm(spec.pidFile, { force: true });
  return undefined;
}

async function tail(file: string, from: number, max = 2000): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.slice(Math.max(from, text.length - max));
  } catch {
    return '';
  }
}

/**
 * Starts the server unless it is already running (then it only waits for readiness). Fails,
 * with the tail of the server's log, when the fail filter matches, the process exits, or the
 * timeout passes; a server that failed to start is stopped, not left half-up.
 */
export function startProcess(
  spec: ProcessSpec,
  options: StartOptions,
): Promise<{ pid: number; alreadyRunning: boolean }> {
  // One start of a server at a time in this process: the agent's supervisor, the bundle
  // framework and a runbook may all ask for the same server, and two spawns would race.
  const run = (starting.get(spec.pidFile) ?? Promise.resolve()).then(() =>
    startOnce(spec, options),
  );
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  starting.set(spec.pidFile, tail);
  void tail.then(() => {
    if (starting.get(spec.pidFile) === tail) starting.delete(spec.pidFile);
  });
  return run;
}

const starting = new Map<string, Promise<void>>();

async function startOnce(
  spec: ProcessSpec,
  options: StartOptions,
): Promise<{ pid: number; alreadyRunning: boolean }> {
  const existing = await runningPid(spec);
  if (existing) {
    await waitUntilReady(spec, existing, options, undefined);
    return { pid: existing, alreadyRunning: true };
  }
  await mkdir(path.dirname(spec.logFile), { recursive: true });
  await mkdir(path.dirname(spec.pidFile), { recursive: true });
  const offset = await stat(spec.logFile).then(
    (s) => s.size,
    () => 0,
  );
  const log = await open(spec.logFile, 'a');
  let exitCode: number | null | undefined;
  try {
    await log.write(
      `\n=== ${new Date().toISOString()} clusterguard starts ${spec.name}: ${spec.command} ${spec.args.join(' ')}\n`,
    );
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new ClusterGuardError(
            err.code === 'ENOENT' ? 'MissingBinary' : 'MiddlewareFailure',
            `cannot start ${spec.name}: ${spec.command}: ${err.message}`,
          ),
        ),
      );
    });
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
    });
    child.unref();
    await writeFile(spec.pidFile, `${pid}\n`);
    try {
      await waitUntilReady(spec, pid, options, { offset, exited: () => exitCode !== undefined });
    } catch (err) {
      await stopProcess(spec, { graceMs: 5000 });
      throw err;
    }
    return { pid, alreadyRunning: false };
  } finally {
    await log.close();
  }
}

async function waitUntilReady(
  spec: ProcessSpec,
  pid: number,
  options: StartOptions,
  fresh: { offset: number; exited: () => boolean } | undefined,
): Promise<void> {
  const started = Date.now();
  const success = fresh ? toRegExp(options.successFilter) : undefined;
  const failure = fresh ? toRegExp(options.failFilter) : undefined;
  let seenSuccess = !success;
  for (;;) {
    options.signal?.throwIfAborted();
    const elapsed = Date.now() - started;
    options.onWait?.(elapsed);
    if (fresh && (success || failure)) {
      const log = await tail(spec.logFile, fresh.offset, Number.MAX_SAFE_INTEGER);
      if (failure?.test(log)) {
        throw new ClusterGuardError(
          'MiddlewareFailure',
          `${spec.name} failed to start: its log matched ${failure}. Log tail (${spec.logFile}):\n${await tail(spec.logFile, fresh.offset)}`,
        );
      }
      if (!seenSuccess && success?.test(log)) seenSuccess = true;
    }
    if (fresh?.exited() || !(await alive(pid))) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `${spec.name} exited during start-up. Log tail (${spec.logFile}):\n${await tail(spec.logFile, fresh?.offset ?? 0)}`,
      );
    }
    if (seenSuccess && (!options.ready || (await options.ready().catch(() => false)))) return;
    if (elapsed > options.timeoutMs) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `${spec.name} did not become ready within ${Math.round(options.timeoutMs / 1000)} s ` +
          `(${seenSuccess ? 'its log showed success but it does not answer' : `its log never matched ${success}`}). ` +
          `Log tail (${spec.logFile}):\n${await tail(spec.logFile, fresh?.offset ?? 0)}`,
      );
    }
    await sleep(200);
  }
}

/**
 * Stops the server: SIGTERM to its process group, then SIGKILL after `graceMs`. Returns
 * whether it was running; a stopped server is not an error.
 */
export async function stopProcess(
  spec: Pick<ProcessSpec, 'pidFile' | 'marker'>,
  options: { graceMs: number; force?: boolean },
): Promise<{ wasRunning: boolean }> {
  const pid = await runningPid(spec);
  if (!pid) return { wasRunning: false };
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  if (!options.force) {
    signalGroup('SIGTERM');
    const deadline = Date.now() + options.graceMs;
    while (Date.now() < deadline && (await alive(pid))) await sleep(100);
  }
  if (await alive(pid)) {
    signalGroup('SIGKILL');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await alive(pid))) await sleep(50);
  }
  await rm(spec.pidFile, { force: true });
  return { wasRunning: true };
}
