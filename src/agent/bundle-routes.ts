import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bodyLimit } from 'hono/body-limit';
import type { BundleMeta } from '../contracts/bundles.js';
import type { NodeBundles } from '../contracts/bundle-view.js';
import { ClusterGuardError } from '../contracts/errors.js';
import type { BundleStore, InstalledStateFile } from '../bundles/store.js';
import type { Logger } from '../logger.js';
import type { AgentRoutes } from './server.js';

export interface BundleRoutesOptions {
  store: BundleStore;
  state: InstalledStateFile;
  /** Largest upload; the agent-wide `agent.maxBodyBytes` applies as well. */
  maxUploadBytes: number;
  logger: Logger;
  /** After a bundle new to this agent was stored: announce it (`bundle.available`). */
  onStored?: (meta: BundleMeta) => Promise<void> | void;
  /** With Felix: what the framework runs, for `GET /v1/bundles` (`framework`). */
  framework?: () => Promise<NodeBundles['framework']>;
  /** The cluster this agent belongs to and its members, for `bundle list --master`. */
  cluster?: () => Promise<{ clusterId: string; members: string[] }>;
}

/** The multipart field that carries the bundle. */
export const uploadField = 'file';

/**
 * `POST /v1/bundles` (multipart, field `file`): reads the bundle's identity from its manifest,
 * stores it by sha256 and answers `{ symbolicName, version, sha256, bytes }`; anything that is not
 * an OSGi bundle is refused with the reason, and nothing is stored then.
 * `GET /v1/bundles/<sha256>`: the jar, for other agents. `GET /v1/bundles`: the store and what
 * this node runs. All behind the cluster token (mounted through `routes` of createAgentApp).
 */
export function bundleRoutes(options: BundleRoutesOptions): AgentRoutes {
  const { store, state, logger } = options;
  return (app) => {
    app.post(
      '/v1/bundles',
      bodyLimit({
        maxSize: options.maxUploadBytes,
        onError: (c) =>
          c.json(
            {
              error: `the bundle is larger than this agent accepts (${options.maxUploadBytes} bytes)`,
              hint: 'raise bundles.maxUploadBytes (and agent.maxBodyBytes) in the agent config',
            },
            413,
          ),
      }),
      async (c) => {
        const type = c.req.header('content-type') ?? '';
        if (!type.toLowerCase().startsWith('multipart/form-data')) {
          return c.json(
            {
              error: 'expected a multipart/form-data upload',
              hint: `send the jar as the form field "${uploadField}" (curl -F ${uploadField}=@bundle.jar)`,
            },
            400,
          );
        }
        let body: Awaited<ReturnType<typeof c.req.parseBody>>;
        try {
          body = await c.req.parseBody();
        } catch (err) {
          return c.json(
            {
              error: `the multipart body could not be read: ${(err as Error).message}`,
              hint: `send the jar as the form field "${uploadField}" (curl -F ${uploadField}=@bundle.jar)`,
            },
            400,
          );
        }
        const file = body[uploadField];
        if (!(file instanceof File)) {
          return c.json(
            { error: `no file in the form field "${uploadField}"`, hint: 'curl -F file=@x.jar' },
            400,
          );
        }
        if (file.size === 0) return c.json({ error: 'the uploaded file is empty' }, 400);
        const temp = await store.tempFile();
        try {
          await pipeline(Readable.fromWeb(file.stream()), createWriteStream(temp, { flags: 'wx' }));
          const { fresh, ...meta } = await store.adopt(temp, { fileName: file.name });
          logger.info(fresh ? 'bundle stored' : 'bundle already stored', { ...meta });
          if (fresh && options.onStored) {
            try {
              await options.onStored(meta);
            } catch (err) {
              // The bundle is stored either way; the announcement is spooled and retried.
              logger.warn('bundle.available not announced', { error: (err as Error).message });
            }
          }
          return c.json(
            {
              symbolicName: meta.symbolicName,
              version: meta.version,
              sha256: meta.sha256,
              bytes: meta.bytes,
              stored: fresh ? 'new' : 'already',
            },
            fresh ? 201 : 200,
          );
        } catch (err) {
          if (err instanceof ClusterGuardError && err.type === 'InvalidInput') {
            logger.warn('bundle upload refused', { file: file.name, reason: err.message });
            return c.json({ error: `refused ${file.name || 'the upload'}: ${err.message}` }, 422);
          }
          throw err;
        } finally {
          await rm(temp, { force: true });
        }
      },
    );

    app.get('/v1/bundles', async (c) => {
      const [stored, installed, framework, cluster] = await Promise.all([
        store.list(),
        state.read(),
        options.framework?.(),
        options.cluster?.().catch(() => undefined),
      ]);
      return c.json({
        stored,
        installed: installed.bundles,
        ...(framework ? { framework } : {}),
        ...(cluster ?? {}),
      });
    });

    app.get('/v1/bundles/:sha256{[0-9a-f]{64}}', async (c) => {
      const sha256 = c.req.param('sha256');
      const meta = await store.get(sha256);
      if (!meta) {
        return c.json({ error: `no bundle with sha256 ${sha256} in this agent's store` }, 404);
      }
      c.header('Content-Type', 'application/java-archive');
      c.header('Content-Length', String(meta.bytes));
      c.header('X-Bundle-Sha256', meta.sha256);
      c.header('X-Bundle-Symbolic-Name', meta.symbolicName);
      c.header('X-Bundle-Version', meta.version);
      return c.body(Readable.toWeb(createReadStream(store.jarPath(sha256))) as ReadableStream);
    });
  };
}
