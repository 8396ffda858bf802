import { agentBaseUrl, type ClientTls } from '../agent/tls.js';
import type { FrameworkBundleView, NodeBundles } from '../contracts/bundle-view.js';
import type { FelixBundle, FelixListing } from '../middleware/felix/client.js';
import { agentBundles } from './client.js';
import type { InstalledStateFile } from './store.js';

export function frameworkBundleView(b: FelixBundle): FrameworkBundleView {
  return {
    symbolicName: b.symbolicName ?? `#${b.id}`,
    version: b.version,
    state: b.state,
    components: b.components.map(
      (c) => `${c.name} ${c.state}${c.failure ? `: ${c.failure.split('\n')[0] ?? ''}` : ''}`,
    ),
  };
}

/**
 * This node's part of the view: what its framework runs (asked, never started for it) and what
 * rollouts recorded. A framework that does not answer is reported, not thrown.
 */
export async function nodeBundles(deps: {
  address: string;
  state: InstalledStateFile;
  listFramework?: () => Promise<FelixListing>;
}): Promise<NodeBundles> {
  const recorded = Object.fromEntries(
    Object.values((await deps.state.read()).bundles).map((b) => [
      b.symbolicName,
      { version: b.version, sha256: b.sha256 },
    ]),
  );
  let framework: NodeBundles['framework'];
  if (deps.listFramework) {
    try {
      const listing = await deps.listFramework();
      framework = { pid: listing.pid, bundles: listing.bundles.map(frameworkBundleView) };
    } catch (err) {
      framework = { error: `framework: ${(err as Error).message}` };
    }
  }
  return { node: deps.address, ...(framework ? { framework } : {}), recorded };
}

/** Every node's part of the view, asked in parallel; a node that does not answer is a row. */
export async function clusterBundles(options: {
  nodes: string[];
  port: number;
  token: string;
  tls?: ClientTls;
}): Promise<NodeBundles[]> {
  return Promise.all(
    options.nodes.map(async (node): Promise<NodeBundles> => {
      try {
        const answer = await agentBundles({
          url: agentBaseUrl(node, options.port, options.tls),
          token: options.token,
          ...(options.tls ? { tls: options.tls } : {}),
        });
        return {
          node,
          ...(answer.framework ? { framework: answer.framework } : {}),
          recorded: Object.fromEntries(
            Object.entries(answer.installed).map(([k, b]) => [
              k,
              { version: b.version, sha256: b.sha256 },
            ]),
          ),
        };
      } catch (err) {
        return { node, recorded: {}, error: (err as Error).message };
      }
    }),
  );
}
