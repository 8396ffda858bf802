import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { isNodeAddress } from '../contracts/addresses.js';
import { ClusterGuardError } from '../contracts/errors.js';

/** Middleware whose data a node keeps (docs/design.md). */
export const middlewareNames = ['cockroach', 'zookeeper', 'kafka'] as const;
export type MiddlewareName = (typeof middlewareNames)[number];
/** The controller only takes part in data operations (docs/design.md). */
export const dataComponents = ['controller', ...middlewareNames] as const;
export type DataComponent = (typeof dataComponents)[number];
export const dataOperations = ['import', 'export', 'backup', 'restore'] as const;
export type DataOperation = (typeof dataOperations)[number];

/** The subfolder kept under a node's config for each middleware (docs/design.md). */
const configSubfolder: Record<MiddlewareName, string> = {
  cockroach: 'certs',
  zookeeper: 'conf',
  kafka: 'conf',
};

/**
 * Timestamp used in archive names: sortable, no characters that need quoting on any file
 * system, e.g. `20261122T074512Z`.
 */
export function archiveTimestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

function checkedAddress(address: string): string {
  if (!isNodeAddress(address)) {
    throw new ClusterGuardError(
      'InvalidInput',
      `"${address}" is not a node address (IPv4 or host name); refusing to build a path from it`,
    );
  }
  return address;
}

/**
 * Every folder and file of a node (docs/design.md: the MiddlewareContext), derived from one
 * root. Pure: nothing is created until `ensure*` is called.
 */
export class NodeLayout {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get confFolder(): string {
    return path.join(this.root, 'conf');
  }
  get clusterFile(): string {
    return path.join(this.confFolder, 'cluster.json');
  }
  get clusterConfigFolder(): string {
    return path.join(this.root, 'cluster-config');
  }
  get clusterDistributionFolder(): string {
    return path.join(this.root, 'cluster-distribution');
  }
  get nodeConfigRoot(): string {
    return path.join(this.root, 'node-config');
  }
  get nodeDataRoot(): string {
    return path.join(this.root, 'node-data');
  }

  /** `cluster-config/<address>`: the master's working copy of one node's configuration. */
  clusterConfigFor(address: string, mw?: MiddlewareName): string {
    const base = path.join(this.clusterConfigFolder, checkedAddress(address));
    return mw ? path.join(base, mw, configSubfolder[mw]) : base;
  }
  /** `cluster-distribution/<address>.zip`: what a node downloads from the master. */
  distributionFileFor(address: string): string {
    return path.join(this.clusterDistributionFolder, `${checkedAddress(address)}.zip`);
  }
  /** `node-config/<mw>/<certs|conf>`: the configuration this node runs with. */
  nodeConfigFolder(mw: MiddlewareName): string {
    return path.join(this.nodeConfigRoot, mw, configSubfolder[mw]);
  }
  nodeDataFolder(mw: MiddlewareName): string {
    return path.join(this.nodeDataRoot, mw, 'data');
  }
  nodeLogFolder(mw: MiddlewareName): string {
    return path.join(this.nodeDataRoot, mw, 'log');
  }
  /** `<op>-data/<component>`: the working folder of a data operation (`bundles`: the bundle set). */
  workingFolder(op: DataOperation, component: DataComponent | 'bundles'): string {
    return path.join(this.root, `${op}-data`, component);
  }
  /** `<op>-data-archive`: where a data operation's zip archives live. */
  archiveFolder(op: DataOperation): string {
    return path.join(this.root, `${op}-data-archive`);
  }
  /** `<op>-data-archive/<timestamp>.zip`. */
  archiveFile(op: DataOperation, at: Date): string {
    return path.join(this.archiveFolder(op), `${archiveTimestamp(at)}.zip`);
  }

  /** `bundles/`: the bundle store, the default deploy folder and the installed state (issue 6). */
  get bundlesFolder(): string {
    return path.join(this.root, 'bundles');
  }
  /** `bundles/store`: every uploaded or fetched bundle as `<sha256>.jar` + `<sha256>.json`. */
  get bundleStoreFolder(): string {
    return path.join(this.bundlesFolder, 'store');
  }
  /** `bundles/deploy`: the default folder the OSGi runtime watches. */
  get bundleDeployFolder(): string {
    return path.join(this.bundlesFolder, 'deploy');
  }
  /** `bundles/installed.json`: which version of each bundle this node runs. */
  get bundleStateFile(): string {
    return path.join(this.bundlesFolder, 'installed.json');
  }

  /** Every folder of the old guard service (docs/design.md), for `ensureAll`. */
  allFolders(): string[] {
    const folders = [
      this.confFolder,
      this.clusterConfigFolder,
      this.clusterDistributionFolder,
      ...middlewareNames.flatMap((mw) => [
        this.nodeConfigFolder(mw),
        this.nodeDataFolder(mw),
        this.nodeLogFolder(mw),
      ]),
      ...dataOperations.flatMap((op) => [
        this.archiveFolder(op),
        ...dataComponents.map((c) => this.workingFolder(op, c)),
      ]),
    ];
    return folders;
  }

  /** Creates `folder` (and parents) on demand; returns it for chaining. */
  async ensure(folder: string): Promise<string> {
    await mkdir(folder, { recursive: true });
    return folder;
  }

  async ensureAll(): Promise<void> {
    await Promise.all(this.allFolders().map((f) => mkdir(f, { recursive: true })));
  }
}
