import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BundleMeta, InstalledBundle } from '../contracts/bundles.js';
import { agentBaseUrl, agentRequest, describeTlsError, type ClientTls } from '../agent/tls.js';
import type { NodeBundles } from '../contracts/bundle-view.js';
import { ClusterGuardError } from '../contracts/errors.js';

/** What `POST /v1/bundles` answers. */
export interface PushedBundle {
  symbolicName: string;
  version: string;
  sha256: string;
  bytes: number;
  /** `already`: that agent had stored this artifact before. */
  stored: 'new' | 'already';
}

export interface AgentTarget {
  /** `http://<node>:<agent port>`, or `https://…` when the agents serve TLS */
  url: string;
  token: string;
  /** The agents' CA and, for mutual TLS, a client certificate. */
  tls?: ClientTls;
}

/** A request to one agent; TLS failures are said in words an operator can act on. */
async function request<T>(
  target: AgentTarget,
  url: string,
  init: RequestInit,
  use: (res: Response) => T | Promise<T>,
): Promise<T> {
  try {
    return await agentRequest(url, init, target.tls, use);
  } catch (err) {
    const tls = describeTlsError(err, url);
    if (tls) throw new ClusterGuardError('NodeUnreachable', tls);
    throw err;
  }
}

async function problemOf(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: string; hint?: string };
    if (body.error) return body.hint ? `${body.error} (${body.hint})` : body.error;
  } catch {
    // not the agent's JSON
  }
  return text.slice(0, 300) || `HTTP ${res.status}`;
}

/** Uploads a jar to one agent (`clusterguard bundle push <file>`). */
export async function pushBundle(target: AgentTarget, file: string): Promise<PushedBundle> {
  const form = new FormData();
  form.set('file', new Blob([await readFile(file)]), path.basename(file));
  const url = `${target.url}/v1/bundles`;
  const init = { method: 'POST', headers: { authorization: `Bearer ${target.token}` }, body: form };
  return request(target, url, init, async (res) => {
    if (!res.ok) {
      throw new ClusterGuardError(
        res.status === 401 ? 'Unauthorized' : 'InvalidInput',
        `${target.url} refused ${path.basename(file)} (HTTP ${res.status}): ${await problemOf(res)}`,
      );
    }
    return (await res.json()) as PushedBundle;
  });
}

/** One agent's store, installed bundles and, with Felix, what its framework runs. */
export interface AgentBundlesAnswer {
  stored: BundleMeta[];
  installed: Record<string, InstalledBundle>;
  framework?: NodeBundles['framework'];
  /** The agent's cluster and the members its cluster.json lists, when it has one. */
  clusterId?: string;
  members?: string[];
}

/** `GET /v1/bundles` of one agent. */
export async function agentBundles(target: AgentTarget): Promise<AgentBundlesAnswer> {
  const init = {
    headers: { authorization: `Bearer ${target.token}` },
    signal: AbortSignal.timeout(10_000),
  };
  return request(target, `${target.url}/v1/bundles`, init, async (res) => {
    if (!res.ok) {
      throw new ClusterGuardError(
        res.status === 401 ? 'Unauthorized' : 'NodeUnreachable',
        `${target.url}: ${await problemOf(res)}`,
      );
    }
    return (await res.json()) as AgentBundlesAnswer;
  });
}

export interface BundleStatusRow {
  node: string;
  /** The installed version, `—` when not installed, or why the node did not answer. */
  version?: string;
  sha256?: string;
  installedAt?: string;
  error?: string;
}

/**
 * The node × version table of one bundle across a cluster (`clusterguard bundle status
 * <symbolicName>`): each node's agent is asked in parallel; a node that does not answer is a
 * row with its error, not a failure of the whole table.
 */
export async function bundleStatus(options: {
  nodes: string[];
  port: number;
  token: string;
  tls?: ClientTls;
  symbolicName: string;
}): Promise<BundleStatusRow[]> {
  return Promise.all(
    options.nodes.map(async (node): Promise<BundleStatusRow> => {
      try {
        const { installed } = await agentBundles({
          url: agentBaseUrl(node, options.port, options.tls),
          token: options.token,
          ...(options.tls ? { tls: options.tls } : {}),
        });
        const b = installed[options.symbolicName];
        return b
          ? { node, version: b.version, sha256: b.sha256, installedAt: b.installedAt }
          : { node };
      } catch (err) {
        return { node, error: (err as Error).message };
      }
    }),
  );
}
