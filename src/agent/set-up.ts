import { access, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { NodeLayout } from '../config/layout.js';
import { kafkaConfigFiles } from '../middleware/kafka/config.js';
import type { SupervisedServer } from './supervisor.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

const hasEntries = (folder: string) =>
  readdir(folder).then(
    (names) => names.length > 0,
    () => false,
  );

/**
 * Whether a server is set up on this node, for the supervisor (src/agent/supervisor.ts): its
 * configuration, and data that a runbook initialised. Undefined when it is; else what is missing.
 */
export async function notSetUp(
  layout: NodeLayout,
  server: SupervisedServer,
): Promise<string | undefined> {
  switch (server) {
    case 'zookeeper': {
      const config = path.join(layout.nodeConfigFolder('zookeeper'), 'zoo.cfg');
      if (!(await exists(config))) return `no configuration at ${config}`;
      const data = layout.nodeDataFolder('zookeeper');
      // ZooKeeper writes version-2 (its snapshots and transaction logs) once it has served.
      if (!(await exists(path.join(data, 'version-2')))) return `no ensemble data at ${data}`;
      return undefined;
    }
    case 'kafka': {
      const manifest = path.join(layout.nodeConfigFolder('kafka'), kafkaConfigFiles.manifest);
      if (!(await exists(manifest))) return `no configuration at ${manifest}`;
      const meta = path.join(layout.nodeDataFolder('kafka'), 'meta.properties');
      if (!(await exists(meta))) return `no formatted storage (${meta})`;
      return undefined;
    }
    case 'cockroach': {
      const store = layout.nodeDataFolder('cockroach');
      return (await hasEntries(store)) ? undefined : `no store at ${store}`;
    }
    case 'felix':
      // The framework holds no cluster data: its bundles come back from the desired set.
      return undefined;
  }
}
