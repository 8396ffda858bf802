import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { Context } from '@temporalio/activity';
import { execa } from 'execa';
import { agentBaseUrl, agentRequest, describeTlsError } from '../src/agent/tls.js';
import { isNodeAddress } from '../src/contracts/addresses.js';
import {
  bundleVersionPattern,
  healthCheckNamePattern,
  sha256Pattern,
  symbolicNamePattern,
  type InspectBundleInput,
  type InspectBundleResult,
  type InstallBundleInput,
  type NodeInstall,
  type RollbackBundleInput,
  type RollbackBundleResult,
} from '../src/contracts/bundles.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { BundleActivityDeps } from '../src/bundles/agent.js';
import { removeOlderThan, sha256OfFile } from '../src/bundles/store.js';
import { rollbackInFramework, rolledBackEntry, withRunning } from '../src/bundles/framework.js';
import { runHealthCheck } from './bundle-health.js';
import { describeActivity, keepHeartbeating } from './interceptor.js';

export type { BundleActivityDeps };

/** Every second, so that a killed agent is noticed within the (short) heartbeat timeout. */
const heartbeatEveryMs = 1000;
/** One fetch of an artifact from one agent, connect to last byte. */
const fetchTimeoutMs = 120_000;
/**
 * Beside the deploy folder, not in it: FileInstall and Karaf take a subfolder of the watched
 * folder for an exploded bundle. The same parent keeps the final rename on one file system.
 */
export function stagingFolderOf(deployFolder: string): string {
  return path.join(path.dirname(deployFolder), `.${path.basename(deployFolder)}.staging`);
}

type Version = { version: string; sha256: string };

function check(ok: boolean, message: string): void {
  if (!ok) throw new ClusterGuardError('InvalidInput', message);
}

function checkIdentity(sha256: string, symbolicName: string, version: string): void {
  check(sha256Pattern.test(sha256), `"${sha256}" is not a sha256 in hex`);
  check(symbolicNamePattern.test(symbolicName), `"${symbolicName}" is not a symbolic name`);
  check(bundleVersionPattern.test(version), `"${version}" is not a bundle version`);
}

/** Creates the bundle activities of one node agent. */
export function createBundleActivities(deps: BundleActivityDeps) {
  const self = deps.address;
  const stagingFolder = stagingFolderOf(deps.deployFolder);
  const deployFileOf = (symbolicName: string) =>
    path.join(deps.deployFolder, `${symbolicName}.jar`);

  // Files from before this process started are a crashed agent's; newer ones are in use.
  const startedAt = Date.now();
  /** Partial files of an install or a fetch that a crash interrupted: never left behind. */
  async function removeLeftovers(): Promise<void> {
    await deps.store.removeTempFiles(startedAt);
    await removeOlderThan(stagingFolder, startedAt);
  }

  async function deployedSha(symbolicName: string): Promise<string | undefined> {
    if (deps.installCommand || deps.framework) return undefined;
    const file = deployFileOf(symbolicName);
    // A missing file is "nothing deployed".
    return (await sha256OfFile(file).catch(() => undefined))?.sha256;
  }

  /** The artifact in this node's store, fetched from the first source that serves it. */
  async function ensureStored(sha256: string, sources: string[], signal: AbortSignal) {
    const have = await deps.store.get(sha256);
    if (have) return have;
    const problems: string[] = [];
    for (const source of sources) {
      if (source === self || !isNodeAddress(source)) continue;
      const url = `${agentBaseUrl(source, deps.agentPort, deps.agentTls)}/v1/bundles/${sha256}`;
      const temp = await deps.store.tempFile();
      try {
        const init = {
          headers: { authorization: `Bearer ${deps.token}` },
          signal: AbortSignal.any([signal, AbortSignal.timeout(fetchTimeoutMs)]),
        };
        const keep = async (res: Response) => {
          if (res.status === 401 || res.status === 403) {
            throw new ClusterGuardError(
              'Unauthorized',
              `the agent on ${source} refused the cluster token of ${self} (${res.status}): ` +
                'give every agent of the cluster the same token',
            );
          }
          if (!res.ok || !res.body) {
            problems.push(`${source}: HTTP ${res.status}`);
            return undefined;
          }
          await pipeline(Readable.fromWeb(res.body), createWriteStream(temp, { flags: 'wx' }));
          // Verifies the hash before anything is kept: a wrong artifact is never stored.
          return deps.store.adopt(temp, { expectedSha256: sha256 });
        };
        // The route's template names the trace span, not each artifact's own URL.
        const meta = await agentRequest(url, init, deps.agentTls, keep, '/v1/bundles/:sha256');
        if (!meta) continue;
        deps.logger.info('bundle fetched', { from: source, sha256, bytes: meta.bytes });
        return meta;
      } catch (err) {
        if (signal.aborted) throw err;
        if (err instanceof ClusterGuardError && err.type === 'Unauthorized') throw err;
        problems.push(describeTlsError(err, url) ?? `${source}: ${(err as Error).message}`);
      } finally {
        await rm(temp, { force: true });
      }
    }
    throw new ClusterGuardError(
      'NodeUnreachable',
      `no agent served bundle ${sha256} to ${self} (${problems.join('; ') || 'no other source was named'}): ` +
        'check that the agent it was uploaded to is running, or upload it again',
    );
  }

  const storedJar = async (sha256: string, sources: string[], signal: AbortSignal) =>
    deps.store.jarPath((await ensureStored(sha256, sources, signal)).sha256);

  /** Puts the stored jar in place: staged beside the deploy folder's files, then renamed. */
  async function deploy(meta: { sha256: string; symbolicName: string; version: string }) {
    if (deps.installCommand) {
      const [cmd = '', ...args] = deps.installCommand;
      const r = await execa(cmd, args, {
        env: {
          BUNDLE_FILE: deps.store.jarPath(meta.sha256),
          BUNDLE_SYMBOLIC_NAME: meta.symbolicName,
          BUNDLE_VERSION: meta.version,
          BUNDLE_SHA256: meta.sha256,
        },
        reject: false,
        all: true,
        timeout: 10 * 60_000,
        cancelSignal: Context.current().cancellationSignal,
      });
      if (r.exitCode !== 0) {
        throw new ClusterGuardError(
          'MiddlewareFailure',
          `the install command of ${self} failed for ${meta.symbolicName} ${meta.version} ` +
            `(exit ${r.exitCode ?? r.signal}): ${String(r.all ?? '').slice(-500)}`,
        );
      }
      return;
    }
    await mkdir(stagingFolder, { recursive: true });
    await mkdir(deps.deployFolder, { recursive: true });
    const staged = path.join(
      stagingFolder,
      `${meta.symbolicName}.${randomUUID().slice(0, 8)}.part`,
    );
    try {
      await copyFile(deps.store.jarPath(meta.sha256), staged);
      const fh = await open(staged, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      // One rename: the runtime sees the old jar or the new one, never half of either.
      await rename(staged, deployFileOf(meta.symbolicName));
    } finally {
      await rm(staged, { force: true });
    }
  }

  async function undeploy(symbolicName: string) {
    if (deps.installCommand) {
      throw new ClusterGuardError(
        'InvalidConfig',
        `${self} installs through bundles.installCommand, which cannot remove ${symbolicName}: ` +
          'remove it by hand',
      );
    }
    await rm(deployFileOf(symbolicName), { force: true });
  }

  /** The jar now in the deploy folder, kept in the store so that a rollback can restore it. */
  async function preserveDeployed(symbolicName: string): Promise<Version> {
    const temp = await deps.store.tempFile();
    await copyFile(deployFileOf(symbolicName), temp);
    const meta = await deps.store.adopt(temp);
    return { version: meta.version, sha256: meta.sha256 };
  }

  return {
    /** Read-only: whether this node holds the artifact, what it runs, and the health check. */
    async inspectBundle(input: InspectBundleInput): Promise<InspectBundleResult> {
      describeActivity(`inspectBundle on node ${self}`);
      check(sha256Pattern.test(input.sha256), `"${input.sha256}" is not a sha256 in hex`);
      const stored = await deps.store.get(input.sha256);
      const state = await deps.state.read();
      const fw = deps.framework?.({ signal: Context.current().cancellationSignal });
      // Skip-when-current asks the framework, not the record (docs/bundles.md).
      const installed = fw
        ? await withRunning(fw, Object.values(state.bundles))
        : Object.values(state.bundles);
      return {
        node: self,
        ...(stored ? { stored } : {}),
        installed,
        healthCheckKnown:
          input.healthCheck === undefined ||
          (healthCheckNamePattern.test(input.healthCheck) &&
            Object.hasOwn(deps.healthChecks, input.healthCheck)),
      };
    },

    /**
     * Fetches, verifies, installs and health-checks one bundle. Safe to repeat: a node already
     * at this version and hash is left alone (`current`); a repeat of this run's own install
     * (the agent died after the rename) checks health again and reports what it recorded.
     */
    async installBundle(input: InstallBundleInput): Promise<NodeInstall> {
      describeActivity(`installBundle on node ${self}`);
      let phase = 'starting';
      const signal = keepHeartbeating(() => ({ phase }), heartbeatEveryMs);
      const { sha256, symbolicName, version } = input;
      checkIdentity(sha256, symbolicName, version);
      if (input.healthCheck !== undefined && !Object.hasOwn(deps.healthChecks, input.healthCheck)) {
        throw new ClusterGuardError(
          'InvalidInput',
          `no health check "${input.healthCheck}" is configured on ${self} (bundles.healthChecks)`,
        );
      }
      await removeLeftovers();
      const entry = (await deps.state.read()).bundles[symbolicName];
      const fw = deps.framework?.({ signal, onProgress: (text) => (phase = text) });
      const onDisk = await deployedSha(symbolicName);
      const running = fw ? await fw.inspect(symbolicName, version) : undefined;
      const matches =
        entry?.sha256 === sha256 &&
        entry.version === version &&
        (running
          ? running.problems.length === 0
          : deps.installCommand !== undefined || onDisk === sha256);
      if (matches && entry.runId !== input.runId) {
        deps.logger.info('bundle already current', { symbolicName, version, sha256 });
        return { node: self, outcome: 'current', previous: entry.previous };
      }
      let previous: Version | null;
      if (matches) {
        previous = entry.previous;
      } else {
        phase = 'fetching';
        const meta = await ensureStored(sha256, input.sources, signal);
        if (meta.symbolicName !== symbolicName || meta.version !== version) {
          throw new ClusterGuardError(
            'InvalidInput',
            `bundle ${sha256} is ${meta.symbolicName} ${meta.version}, not ${symbolicName} ${version}`,
          );
        }
        // What runs now: recorded, or a jar put there by hand, which is kept in the store. In a
        // framework, the record of a version it no longer holds is stale.
        if (running) {
          previous = !running.bundle
            ? null
            : entry && entry.sha256 !== sha256
              ? { version: entry.version, sha256: entry.sha256 }
              : (entry?.previous ?? null);
        } else if (onDisk === undefined && !deps.installCommand) previous = null;
        else if (entry && (onDisk === entry.sha256 || deps.installCommand)) {
          previous = { version: entry.version, sha256: entry.sha256 };
        } else if (onDisk === sha256) previous = null;
        else previous = await preserveDeployed(symbolicName);
        // The jar may already be in place when an earlier attempt died before recording.
        if (fw) {
          phase = 'installing in the framework';
          await fw.apply({
            jar: deps.store.jarPath(sha256),
            symbolicName,
            version,
            allowDowngrade: input.allowDowngrade === true,
            restore: async () =>
              previous ? storedJar(previous.sha256, input.sources, signal) : null,
          });
        } else if (onDisk !== sha256) {
          phase = 'installing';
          await deploy(meta);
        }
        await deps.state.update(symbolicName, () => ({
          symbolicName,
          version,
          sha256,
          installedAt: input.datetime,
          workflowId: input.workflowId,
          runId: input.runId,
          previous,
        }));
        deps.logger.info('bundle installed', { symbolicName, version, sha256, previous });
      }
      if (input.healthCheck === undefined) {
        return { node: self, outcome: 'installed', previous };
      }
      phase = 'health check';
      const health = await runHealthCheck(
        deps,
        input.healthCheck,
        {
          BUNDLE_FILE:
            deps.installCommand || fw ? deps.store.jarPath(sha256) : deployFileOf(symbolicName),
          BUNDLE_SYMBOLIC_NAME: symbolicName,
          BUNDLE_VERSION: version,
          BUNDLE_SHA256: sha256,
        },
        signal,
        (text) => (phase = text),
      );
      if (!health.ok) deps.logger.warn('health check failed', { symbolicName, ...health });
      return { node: self, outcome: 'installed', previous, health };
    },

    /**
     * Puts back what ran before this rollout (`to`), or removes the bundle when nothing did.
     * Leaves a node alone that no longer runs the version being rolled back.
     */
    async rollbackBundle(input: RollbackBundleInput): Promise<RollbackBundleResult> {
      describeActivity(`rollbackBundle on node ${self}`);
      const signal = keepHeartbeating(
        () => ({ rollingBack: input.symbolicName }),
        heartbeatEveryMs,
      );
      const { symbolicName, from, to } = input;
      checkIdentity(from.sha256, symbolicName, from.version);
      if (to) checkIdentity(to.sha256, symbolicName, to.version);
      await removeLeftovers();
      const entry = (await deps.state.read()).bundles[symbolicName];
      const fw = deps.framework?.({ signal });
      if (fw) {
        return await rollbackInFramework({
          fw,
          input,
          entry,
          self,
          state: deps.state,
          logger: deps.logger,
          storedJar: (sha) => storedJar(sha, input.sources, signal),
        });
      }
      const onDisk = await deployedSha(symbolicName);
      const current = deps.installCommand ? entry?.sha256 : onDisk;
      const done = to === null ? current === undefined : current === to.sha256;
      if (!done && current !== from.sha256) {
        deps.logger.warn('rollback skipped: the node runs another version', {
          symbolicName,
          expected: from.sha256,
          found: current,
        });
        return { node: self, restored: null, changed: false };
      }
      if (to === null) {
        await undeploy(symbolicName);
        await deps.state.update(symbolicName, () => null);
      } else {
        const meta = await ensureStored(to.sha256, input.sources, signal);
        if (!done) await deploy(meta);
        await deps.state.update(symbolicName, () => rolledBackEntry(input, to));
      }
      deps.logger.info('bundle rolled back', { symbolicName, from, to });
      return { node: self, restored: to, changed: !done };
    },
  };
}

export type BundleActivities = ReturnType<typeof createBundleActivities>;

/** Lists what is in the deploy folder's staging area (tests: no partial files are left). */
export async function stagingLeftovers(deployFolder: string): Promise<string[]> {
  return readdir(stagingFolderOf(deployFolder)).catch(() => []);
}
