import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ClusterStore } from '../config/cluster-store.js';
import { bundleVersionPattern, sha256Pattern, symbolicNamePattern } from '../contracts/bundles.js';
import type { ManifestFile } from '../contracts/data-archives.js';
import { ClusterGuardError } from '../contracts/errors.js';
import {
  listData,
  wipeFolder,
  withOperations,
  type AdapterDeps,
  type DataResult,
  type MiddlewareAdapter,
  type ServerStatus,
} from '../middleware/kit/index.js';
import { readDesiredRecords, replaceDesiredBundles } from './desired.js';
import { BundleStore, InstalledStateFile, sha256OfFile } from './store.js';

/**
 * The application's bundle set as a data component of a backup (docs/design.md, "The
 * application's bundles in a backup"): the cluster's desired set and its history from ZooKeeper,
 * the jar of every desired bundle (copied from this node's store, named by its sha256), and what
 * this node's agent recorded as installed. Taken on the master, like the replicated middleware.
 * A restore puts the jars back into the store and the record back into ZooKeeper; the runbook
 * then brings every member's running framework to it (workflows/lib/bundle-converge.ts).
 */

export const BUNDLES_MANIFEST = 'bundles.json';

export interface BundlesBackupOptions {
  /** This node runs ZooKeeper (`middleware.enabled`), where the desired set lives. */
  zooKeeper: boolean;
  zooKeeperClientPort: number;
}

const desiredSchema = z.object({
  symbolicName: z.string().regex(symbolicNamePattern),
  version: z.string().regex(bundleVersionPattern),
  sha256: z.string().regex(sha256Pattern),
  workflowId: z.string(),
  at: z.string(),
});

const jarPath = /^jars\/[0-9a-f]{64}\.jar$/;

export const bundleSetManifestSchema = z.object({
  component: z.literal('bundles'),
  version: z.literal(1),
  createdAt: z.string(),
  /** The node it was taken on. */
  node: z.string(),
  /** What the cluster should run, in the order its bundles came into the cluster. */
  desired: z.array(desiredSchema),
  /** Every version ever made desired, oldest first. */
  history: z.array(desiredSchema),
  /** One jar per desired bundle: `jars/<sha256>.jar` in this folder, and where it came from. */
  jars: z.array(
    z.object({
      symbolicName: z.string(),
      version: z.string(),
      sha256: z.string().regex(sha256Pattern),
      bytes: z.number().int().nonnegative(),
      path: z.string().regex(jarPath, 'jars/<sha256>.jar'),
      from: z.string(),
    }),
  ),
  /** What this node's agent recorded as installed (installed.json), for people. */
  installed: z.record(z.string(), z.object({ version: z.string(), sha256: z.string() })),
});
export type BundleSetManifest = z.infer<typeof bundleSetManifestSchema>;

function parseBundleSet(text: string, where: string): BundleSetManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ClusterGuardError('UnsafeArchive', `${where} is not JSON`);
  }
  const parsed = bundleSetManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'UnsafeArchive',
      `${where} is not a bundle set backup: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/**
 * What is wrong with the bundle set of an extracted archive (`content/bundles/…`), given the
 * files it holds with their sha256 as just computed: a desired bundle without its jar, a jar
 * missing, or a jar whose content is not the one the set names. Empty when it is whole.
 */
export async function bundleSetProblems(
  content: string,
  files: readonly ManifestFile[],
): Promise<string[]> {
  const where = `bundles/${BUNDLES_MANIFEST}`;
  let text: string;
  try {
    text = await readFile(path.join(content, 'bundles', BUNDLES_MANIFEST), 'utf8');
  } catch {
    return [`${where} is missing: the archive holds no bundle set`];
  }
  let set: BundleSetManifest;
  try {
    set = parseBundleSet(text, where);
  } catch (err) {
    return [(err as Error).message];
  }
  const problems: string[] = [];
  const held = new Map(files.map((f) => [f.path, f]));
  for (const d of set.desired) {
    if (!set.jars.some((j) => j.sha256 === d.sha256)) {
      problems.push(
        `bundle jar of ${d.symbolicName} ${d.version} (sha256 ${d.sha256}) is not in the bundle set`,
      );
    }
  }
  for (const j of set.jars) {
    const name = `bundle jar ${j.symbolicName} ${j.version} (bundles/${j.path})`;
    const file = held.get(`bundles/${j.path}`);
    if (!file) problems.push(`${name} is missing`);
    else if (file.sha256 !== j.sha256) {
      problems.push(`${name} has sha256 ${file.sha256}, the bundle set names ${j.sha256}`);
    }
  }
  return problems;
}

/** How many bundles and jars an extracted archive's bundle set holds (a restore test). */
export async function readBundleSet(folder: string): Promise<BundleSetManifest> {
  const file = path.join(folder, BUNDLES_MANIFEST);
  return parseBundleSet(await readFile(file, 'utf8'), file);
}

export function createBundlesAdapter(deps: AdapterDeps<BundlesBackupOptions>): MiddlewareAdapter {
  const { address, layout, logger } = deps;
  const options = { zooKeeper: false, zooKeeperClientPort: 2181, ...deps.options };
  const store = new BundleStore(layout.bundleStoreFolder);
  const state = new InstalledStateFile(layout.bundleStateFile);

  const notAServer: ServerStatus = {
    running: false,
    healthy: false,
    detail: 'the bundle set is data (kept in ZooKeeper and the bundle store), not a server',
  };

  /** The cluster's ZooKeeper, through the members of this node's cluster.json. */
  async function connectionString(): Promise<string> {
    if (!options.zooKeeper) {
      throw new ClusterGuardError(
        'InvalidConfig',
        `${address} runs no ZooKeeper (middleware.enabled), where the cluster's desired bundle ` +
          'set is kept: back up and restore the bundle set on a member that runs it',
      );
    }
    const file = await new ClusterStore({ file: layout.clusterFile }).load();
    return file.cluster.nodes
      .map((n) => `${n.includes(':') ? `[${n}]` : n}:${options.zooKeeperClientPort}`)
      .join(',');
  }

  async function backupData(): Promise<DataResult> {
    const records = await readDesiredRecords(await connectionString());
    const work = layout.workingFolder('backup', 'bundles');
    await wipeFolder(work);
    await mkdir(path.join(work, 'jars'), { recursive: true });
    const jars: BundleSetManifest['jars'] = [];
    for (const d of records.desired) {
      if (jars.some((j) => j.sha256 === d.sha256)) continue;
      const from = store.jarPath(d.sha256);
      if (!(await store.get(d.sha256))) {
        throw new ClusterGuardError(
          'InvalidInput',
          `the jar of ${d.symbolicName} ${d.version}, which the cluster should run, is not in the ` +
            `bundle store of ${address} (${from}): a rollout that left this node out does not ` +
            'store it here. Nothing was backed up; upload it to this agent (POST /v1/bundles) ' +
            'and retry the step',
        );
      }
      const rel = `jars/${d.sha256}.jar`;
      await copyFile(from, path.join(work, rel));
      // The copy is what the archive holds: its hash is checked, not the store's word for it.
      const copied = await sha256OfFile(path.join(work, rel));
      if (copied.sha256 !== d.sha256) {
        throw new ClusterGuardError(
          'UnsafeArchive',
          `the bundle store of ${address} holds ${from} with sha256 ${copied.sha256}, not ` +
            `${d.sha256} (${d.symbolicName} ${d.version}): the store is damaged. Nothing was ` +
            'backed up; upload the bundle again (POST /v1/bundles) and retry the step',
        );
      }
      jars.push({
        symbolicName: d.symbolicName,
        version: d.version,
        sha256: d.sha256,
        bytes: copied.bytes,
        path: rel,
        from,
      });
    }
    const installed = Object.fromEntries(
      Object.values((await state.read()).bundles).map((b) => [
        b.symbolicName,
        { version: b.version, sha256: b.sha256 },
      ]),
    );
    const manifest: BundleSetManifest = {
      component: 'bundles',
      version: 1,
      createdAt: new Date().toISOString(),
      node: address,
      ...records,
      jars,
      installed,
    };
    await writeFile(path.join(work, BUNDLES_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    logger.info('bundles: the bundle set backed up', {
      desired: records.desired.map((d) => `${d.symbolicName} ${d.version}`),
      jars: jars.length,
    });
    return listData(work);
  }

  /**
   * Every jar checked against the set and put back into this node's store (where the other
   * members fetch it from), then the desired set written back into ZooKeeper. The frameworks
   * are not touched here: the runbook converges each member afterwards.
   */
  async function restoreData(): Promise<DataResult> {
    const work = layout.workingFolder('restore', 'bundles');
    let set: BundleSetManifest;
    try {
      set = await readBundleSet(work);
    } catch (err) {
      if (err instanceof ClusterGuardError) throw err;
      throw new ClusterGuardError(
        'InvalidInput',
        `nothing to restore: ${work} has no ${BUNDLES_MANIFEST}; unpack a backup that holds the bundle set there first`,
      );
    }
    // Where the record goes, and every jar, are checked before anything is stored or written.
    const zk = await connectionString();
    for (const j of set.jars) {
      const file = path.join(work, j.path);
      const have = await sha256OfFile(file).catch(() => undefined);
      if (!have || have.sha256 !== j.sha256) {
        throw new ClusterGuardError(
          'UnsafeArchive',
          `bundle jar ${j.symbolicName} ${j.version} (${file}) on node ${address} ` +
            `${have ? `has sha256 ${have.sha256}, the bundle set names ${j.sha256}` : 'is missing'}. ` +
            'Nothing was restored of the bundle set; restore another backup',
        );
      }
    }
    for (const j of set.jars) {
      if (await store.get(j.sha256)) continue;
      const temp = await store.tempFile();
      await copyFile(path.join(work, j.path), temp);
      const meta = await store.adopt(temp, { expectedSha256: j.sha256 });
      if (meta.symbolicName !== j.symbolicName || meta.version !== j.version) {
        throw new ClusterGuardError(
          'UnsafeArchive',
          `bundle jar ${j.path} of the backup is ${meta.symbolicName} ${meta.version}, not ` +
            `${j.symbolicName} ${j.version} as its bundle set says`,
        );
      }
    }
    await replaceDesiredBundles(zk, set);
    logger.info('bundles: the bundle set restored', {
      desired: set.desired.map((d) => `${d.symbolicName} ${d.version}`),
      jars: set.jars.length,
    });
    deps.onProgress?.(
      `bundles: desired ${set.desired.map((d) => `${d.symbolicName} ${d.version}`).join(', ') || 'none'}`,
    );
    return listData(work);
  }

  return withOperations({
    name: 'bundles' as const,
    startServer: () => Promise.resolve(notAServer),
    stopServer: () => Promise.resolve(),
    checkServer: () => Promise.resolve(notAServer),
    backupData,
    restoreData,
  });
}
