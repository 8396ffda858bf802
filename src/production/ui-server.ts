import { createWriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { repoRoot } from '../process.js';
import type { CertFiles } from './certs.js';

export interface UiServerOptions {
  /** The ui-server binary (src/production/tools.ts `ensureUiServer`). */
  binary: string;
  host: string;
  port: number;
  /** The Temporal frontend, reached over mutual TLS. */
  temporalAddress: string;
  ca: string;
  client: CertFiles;
  /** The server's output. */
  logFile: string;
}

export interface UiServer {
  url: string;
  process: ResultPromise;
  stop(): Promise<void>;
}

/**
 * The Temporal Web UI server on deploy/temporal-ui/production.yaml, with the stack's client
 * certificate towards the frontend. Ready when its API lists the namespaces, which it can only
 * do through the frontend: the page is served and the TLS to Temporal works.
 */
export async function startUiServer(
  options: UiServerOptions,
  readyTimeoutMs = 60_000,
): Promise<UiServer> {
  const url = `http://${options.host}:${options.port}`;
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = execa(
    options.binary,
    ['--root', repoRoot, '--config', 'deploy/temporal-ui', '--env', 'production', 'start'],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: options.temporalAddress,
        TEMPORAL_UI_HOST: options.host,
        TEMPORAL_UI_PORT: String(options.port),
        TEMPORAL_TLS_CA: options.ca,
        TEMPORAL_TLS_CERT: options.client.cert,
        TEMPORAL_TLS_KEY: options.client.key,
      },
      all: true,
      buffer: false,
      reject: false,
      cleanup: true,
      forceKillAfterDelay: 10_000,
    },
  );
  child.all.pipe(log);
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  const deadline = Date.now() + readyTimeoutMs;
  let last = '';
  for (;;) {
    if (exited) {
      throw new Error(
        `the Temporal Web UI server exited (code ${child.exitCode}) before it was ready; see ${options.logFile}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `the Temporal Web UI server was not ready within ${readyTimeoutMs} ms: ${last}`,
      );
    }
    try {
      const res = await fetch(`${url}/api/v1/namespaces`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(500);
  }
  return {
    url,
    process: child,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await child;
    },
  };
}
