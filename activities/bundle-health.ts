import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { HealthCheckConfig } from '../src/bundles/agent.js';
import type { HealthResult } from '../src/contracts/bundles.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { Logger } from '../src/logger.js';

export interface HealthCheckDeps {
  /** This node. */
  address: string;
  healthChecks: Record<string, HealthCheckConfig>;
  logger: Logger;
}

/**
 * Runs the configured health check `name` (a command or a URL) up to its attempts, with `env`
 * describing the bundle; a check that never passes is reported, not thrown.
 */
export async function runHealthCheck(
  deps: HealthCheckDeps,
  name: string,
  env: Record<string, string>,
  signal: AbortSignal,
  progress: (text: string) => void,
): Promise<HealthResult> {
  const cfg = deps.healthChecks[name];
  if (!cfg)
    throw new ClusterGuardError('InvalidInput', `no health check "${name}" on ${deps.address}`);
  let detail = '';
  for (let attempt = 1; attempt <= cfg.attempts; attempt++) {
    progress(`health check ${name}, attempt ${attempt}`);
    deps.logger.info('running health check', { name, attempt, ...env });
    if (cfg.command) {
      const [cmd = '', ...args] = cfg.command;
      const r = await execa(cmd, args, {
        env,
        reject: false,
        all: true,
        timeout: cfg.timeoutMs,
        cancelSignal: signal,
      });
      if (signal.aborted) throw signal.reason;
      if (r.exitCode === 0) return { name, ok: true, detail: 'exit 0', attempts: attempt };
      detail = r.timedOut
        ? `timed out after ${cfg.timeoutMs} ms`
        : `exit ${r.exitCode ?? r.signal}: ${String(r.all ?? '')
            .trim()
            .slice(-300)}`;
    } else if (cfg.url) {
      try {
        const res = await fetch(cfg.url, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(cfg.timeoutMs)]),
        });
        await res.body?.cancel();
        if (res.ok) return { name, ok: true, detail: `HTTP ${res.status}`, attempts: attempt };
        detail = `HTTP ${res.status} from ${cfg.url}`;
      } catch (err) {
        if (signal.aborted) throw err;
        detail = `${cfg.url}: ${(err as Error).message}`;
      }
    }
    if (attempt < cfg.attempts) await sleep(cfg.intervalMs, undefined, { signal });
  }
  return { name, ok: false, detail, attempts: cfg.attempts };
}
