import path from 'node:path';
import { stat } from 'node:fs/promises';
import type {
  InstalledBundle,
  RollbackBundleInput,
  RollbackBundleResult,
} from '../contracts/bundles.js';
import type { AppConfig } from '../config/app-config.js';
import type { NodeLayout } from '../config/layout.js';
import { ClusterGuardError } from '../contracts/errors.js';
import type { Logger } from '../logger.js';
import { createFelixAdapter, type FelixAdapter } from '../middleware/felix/adapter.js';
import type { FelixBundle, FelixManagement } from '../middleware/felix/client.js';
import {
  bundleProblems,
  compareOsgiVersions,
  findBundle,
  reportProblems,
  sameOsgiVersion,
} from '../middleware/felix/verify.js';
import type { InstalledStateFile } from './store.js';

/**
 * Bundle rollout inside the node's running Apache Felix framework (docs/bundles.md): install by
 * symbolic name when absent, update in place when present, verify what the framework reports,
 * and on a refused bundle put back what ran before — on this node, before the step fails.
 */
export interface FrameworkDeployer {
  /** The framework's bundle of this name and why it does not run `version`, or [] if it does. */
  inspect(
    symbolicName: string,
    version: string,
  ): Promise<{ bundle?: FelixBundle; problems: string[] }>;
  /**
   * Installs or updates `jar` and verifies it. When the framework refuses it, `restore` says
   * what ran before (a jar, or null when nothing did), that is put back, and BundleRejected is
   * thrown with the framework's reasons.
   */
  apply(args: {
    jar: string;
    symbolicName: string;
    version: string;
    allowDowngrade: boolean;
    restore?: () => Promise<string | null>;
  }): Promise<{ pid: number; action: string; refreshed: number[] }>;
  remove(symbolicName: string): Promise<void>;
}

export interface FrameworkContext {
  onProgress?: (detail: string) => void;
  signal?: AbortSignal;
}

/** The node's Felix adapter, built from the agent's own configuration. */
export function felixOf(
  config: AppConfig,
  layout: NodeLayout,
  logger: Logger,
  context: FrameworkContext = {},
): FelixAdapter {
  const { operationOptions, ...options } = config.middleware.felix;
  return createFelixAdapter({
    address: config.node.address,
    layout,
    binDir: path.resolve(config.middleware.binDir),
    java: config.middleware.java,
    logger,
    options,
    operationOptions,
    ...(context.onProgress ? { onProgress: context.onProgress } : {}),
    ...(context.signal ? { signal: context.signal } : {}),
  });
}

/** How long one framework operation may take (update, refresh, start, components settling). */
const operationTimeoutMs = 30_000;

export function frameworkDeployer(
  adapter: FelixAdapter,
  address: string,
  logger: Logger,
  signal?: AbortSignal,
): FrameworkDeployer {
  const where = `the Felix framework on ${address}`;
  /** Started when it is not running (the agent supervises it); waits until it answers. */
  async function ready(): Promise<FelixManagement> {
    const status = await adapter.startServer();
    if (!status.healthy) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `${where} does not answer: ${status.detail}`,
      );
    }
    return adapter.management;
  }

  async function inspect(symbolicName: string, version: string) {
    const m = await ready();
    const bundle = findBundle((await m.list(signal)).bundles, symbolicName);
    return { ...(bundle ? { bundle } : {}), problems: bundleProblems(bundle, version) };
  }

  async function remove(symbolicName: string): Promise<void> {
    const m = await ready();
    const r = await m.uninstall(symbolicName, operationTimeoutMs, signal);
    logger.info('bundle removed from the framework', { symbolicName, action: r.action });
    if (r.lostActive.length > 0) {
      logger.warn('bundles not ACTIVE after the removal', {
        symbolicName,
        bundles: r.lostActive.map((b) => `${b.symbolicName ?? b.id} ${b.state}`),
      });
    }
  }

  return {
    inspect,
    remove,
    async apply({ jar, symbolicName, version, allowDowngrade, restore }) {
      const m = await ready();
      const listing = await m.list(signal);
      const current = findBundle(listing.bundles, symbolicName);
      // Replacing a higher version that does not run (e.g. its component failed) is a repair.
      const currentRuns = current && bundleProblems(current, current.version).length === 0;
      if (currentRuns && !allowDowngrade && compareOsgiVersions(version, current.version) < 0) {
        throw new ClusterGuardError(
          'InvalidInput',
          `${where} runs ${symbolicName} ${current.version}, higher than ${version}: refusing to ` +
            'downgrade. Nothing was changed on this node; roll out with allowDowngrade to go back',
        );
      }
      await stat(jar);
      const report = await m.install(jar, operationTimeoutMs, signal);
      const problems = reportProblems(report, version);
      if (problems.length === 0) {
        logger.info('bundle running in the framework', {
          symbolicName,
          version,
          action: report.action,
          refreshed: report.refreshed,
          pid: listing.pid,
        });
        return { pid: listing.pid, action: report.action, refreshed: report.refreshed ?? [] };
      }
      logger.warn('the framework refused the bundle', { symbolicName, version, problems });
      let undo = 'nothing was put back';
      if (restore) {
        const previous = await restore();
        if (previous) {
          const back = await m.install(previous, operationTimeoutMs, signal);
          const left = reportProblems(back, back.bundle?.version ?? '');
          undo = `the previous version ${back.bundle?.version ?? '?'} was put back${
            left.length > 0 ? `, yet ${left.join('; ')}` : ' and runs'
          }`;
        } else {
          await remove(symbolicName);
          undo = 'it was uninstalled again: nothing ran before';
        }
      }
      throw new ClusterGuardError(
        'BundleRejected',
        `${where} refused ${symbolicName} ${version}: ${problems.join('; ')}. On this node ${undo}`,
      );
    },
  };
}

/** What the state file records of a bundle rolled back to `to` (which has no earlier version). */
export function rolledBackEntry(
  input: RollbackBundleInput,
  to: { version: string; sha256: string },
): InstalledBundle {
  return {
    symbolicName: input.symbolicName,
    version: to.version,
    sha256: to.sha256,
    installedAt: input.datetime,
    workflowId: input.workflowId,
    runId: input.runId,
    previous: null,
  };
}

/**
 * Rollback inside the framework: done when it runs `to` (or nothing, when `to` is null) and
 * verifies; acts when it holds the rolled-out version, whatever its state; leaves another
 * version alone.
 */
export async function rollbackInFramework(deps: {
  fw: FrameworkDeployer;
  input: RollbackBundleInput;
  entry: InstalledBundle | undefined;
  self: string;
  state: InstalledStateFile;
  logger: Logger;
  /** The stored jar of this artifact, fetched from a peer when this node lacks it. */
  storedJar: (sha256: string) => Promise<string>;
}): Promise<RollbackBundleResult> {
  const { fw, input, self, logger } = deps;
  const { symbolicName, from, to } = input;
  const now = await fw.inspect(symbolicName, to?.version ?? from.version);
  const done = to === null ? !now.bundle : now.problems.length === 0;
  if (!done && !(now.bundle && sameOsgiVersion(now.bundle.version, from.version))) {
    logger.warn('rollback skipped: the framework runs another version', {
      symbolicName,
      expected: from.version,
      found: now.bundle?.version,
    });
    return { node: self, restored: null, changed: false };
  }
  if (to === null) {
    if (!done) await fw.remove(symbolicName);
    if (deps.entry) await deps.state.update(symbolicName, () => null);
  } else {
    const jar = await deps.storedJar(to.sha256);
    if (!done) {
      await fw.apply({ jar, symbolicName, version: to.version, allowDowngrade: true });
    }
    await deps.state.update(symbolicName, () => rolledBackEntry(input, to));
  }
  logger.info('bundle rolled back in the framework', { symbolicName, from, to, done });
  return { node: self, restored: to, changed: !done };
}

/**
 * At agent start: a framework that ran on this node before (its bundle cache exists) is started
 * again, so that a reboot or a crash brings the application back without waiting for a rollout.
 */
export async function resumeFramework(
  config: AppConfig,
  layout: NodeLayout,
  logger: Logger,
): Promise<void> {
  const cache = path.join(layout.nodeDataRoot, 'felix', 'felix-cache');
  if (
    !(await stat(cache).then(
      () => true,
      () => false,
    ))
  )
    return;
  try {
    const status = await felixOf(config, layout, logger).startServer();
    logger.info('felix framework running', { pid: status.pid, detail: status.detail });
  } catch (err) {
    logger.warn('could not start the felix framework', { error: (err as Error).message });
  }
}

/** Each record with whether the framework runs that version, for inspectBundle. */
export async function withRunning(
  fw: FrameworkDeployer,
  installed: InstalledBundle[],
): Promise<InstalledBundle[]> {
  return Promise.all(
    installed.map(async (b) => {
      const { problems } = await fw.inspect(b.symbolicName, b.version);
      return {
        ...b,
        running: problems.length === 0 ? { ok: true } : { ok: false, detail: problems.join('; ') },
      };
    }),
  );
}
