import { ClusterGuardError } from '../../contracts/errors.js';

/** One DS component configuration as the framework's ServiceComponentRuntime reports it. */
export interface FelixComponent {
  name: string;
  /** ACTIVE, SATISFIED, UNSATISFIED_REFERENCE, UNSATISFIED_CONFIGURATION, FAILED_ACTIVATION, DISABLED. */
  state: string;
  immediate: boolean;
  /** The framework's failure text (DS 1.5) when activation failed. */
  failure?: string;
  unsatisfiedReferences?: string[];
}

export interface FelixBundle {
  id: number;
  symbolicName: string | null;
  version: string;
  /** INSTALLED, RESOLVED, STARTING, STOPPING, ACTIVE, UNINSTALLED. */
  state: string;
  location: string;
  components: FelixComponent[];
}

export interface FelixListing {
  /** The framework's process id: unchanged across a hot swap. */
  pid: number;
  bundles: FelixBundle[];
}

/** What one install, update or uninstall did, as the management bundle reports it. */
export interface FelixOperationReport {
  action: 'installed' | 'updated' | 'uninstalled' | 'absent';
  /** Ids of the bundles wired to the old revision, which the refresh restarted. */
  refreshed?: number[];
  /** Why the framework could not start the bundle (e.g. a package nobody exports). */
  error?: string;
  bundle?: FelixBundle;
  /** Bundles that were ACTIVE before the operation and are not now. */
  lostActive: FelixBundle[];
}

export interface FelixManagementOptions {
  /** The node's address; the management bundle listens there only. */
  host: string;
  port: number;
  /** The per-node secret the agent wrote for its framework. */
  secret: () => Promise<string>;
  /** Name for messages: `the Felix framework on 10.0.0.1`. */
  name: string;
}

/**
 * Client of clusterguard's management bundle (java/cg-felix-agent): synchronous operations, so
 * an answer means done. A framework that does not answer is a retryable MiddlewareFailure; a
 * bundle the framework refuses outright is BundleRejected.
 */
export function felixManagement(options: FelixManagementOptions) {
  const base = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}/v1`;

  async function call<T>(
    method: 'GET' | 'POST',
    path: string,
    query: Record<string, string>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<T> {
    const url = `${base}${path}?${new URLSearchParams(query).toString()}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${await options.secret()}` },
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])]),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `${options.name} does not answer on ${options.host}:${options.port} ` +
          `(${cause?.code ?? cause?.message ?? (err as Error).message}); it is retried`,
      );
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: text.slice(0, 300) };
    }
    if (res.ok) return body as T;
    const error = (body as { error?: string }).error ?? `HTTP ${res.status}`;
    if (res.status === 400 || res.status === 422) {
      throw new ClusterGuardError('BundleRejected', `${options.name} refused it: ${error}`);
    }
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `${options.name} answered HTTP ${res.status} on ${method} ${path}: ${error}`,
    );
  }

  /** An operation Felix may take `timeoutMs` for; the HTTP call waits 15 s longer. */
  function operation(
    path: string,
    params: Record<string, string>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<FelixOperationReport> {
    const query = { ...params, timeoutMs: String(timeoutMs) };
    return call('POST', path, query, timeoutMs + 15_000, signal);
  }

  return {
    list(signal?: AbortSignal): Promise<FelixListing> {
      return call('GET', '/bundles', {}, 10_000, signal);
    },
    /** Installs the jar, or updates the bundle of its symbolic name in place. */
    install(file: string, timeoutMs: number, signal?: AbortSignal): Promise<FelixOperationReport> {
      return operation('/install', { file }, timeoutMs, signal);
    },
    uninstall(
      symbolicName: string,
      timeoutMs: number,
      signal?: AbortSignal,
    ): Promise<FelixOperationReport> {
      return operation('/uninstall', { symbolicName }, timeoutMs, signal);
    },
  };
}

export type FelixManagement = ReturnType<typeof felixManagement>;
