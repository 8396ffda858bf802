import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context, Hono } from 'hono';
import { readArchiveManifest } from '../archive/manifest.js';
import {
  archiveKinds,
  compareBackupIds,
  isBackupId,
  type ArchiveKind,
} from '../contracts/data-runbooks.js';
import { ClusterGuardError, type ErrorType } from '../contracts/errors.js';
import type { DataRunbookName } from '../contracts/catalog.js';
import type { AgentRoutes, AgentServerDeps } from './server.js';

/** The old guard service's action names (docs/design.md) and the runbooks they start. */
const actions: Record<string, DataRunbookName> = {
  backup: 'backupCluster',
  restore: 'restoreCluster',
  export: 'exportData',
  import: 'importData',
  verify: 'verifyBackup',
};

export interface DataRoutesOptions {
  /** The cluster this agent belongs to: every runbook it starts is of this cluster. */
  clusterId: string;
  /**
   * Validates the input and starts the runbook under `cg/<cluster>/data`; throws a
   * ClusterGuardError (InvalidInput, ClusterBusy) or a connection error.
   */
  start(
    runbook: DataRunbookName,
    input: Record<string, unknown>,
  ): Promise<{ workflowId: string; runId: string }>;
  /** Where the Temporal Web UI is, for the link in the answer. */
  webUi?: { url: string; namespace: string };
}

const statusOf: Partial<Record<ErrorType, 400 | 409 | 422>> = {
  InvalidInput: 400,
  ClusterBusy: 409,
  UnsafeArchive: 422,
};

function refused(c: Context, status: number, error: string, hint?: string) {
  return c.json({ error, ...(hint ? { hint } : {}) }, status as 400);
}

/** Import options sent beside an uploaded archive, as form fields or query parameters. */
function importOptions(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(fields)) {
    if (key === 'archive' || typeof raw !== 'string') continue;
    if (key === 'middleware') out.middleware = raw.split(',').filter(Boolean);
    else if (key === 'keepCurrentData' || key === 'dryRun') out[key] = raw === 'true';
    else if (key === 'stepAttempts' || key === 'agentTimeoutSeconds') out[key] = Number(raw);
    else out[key] = raw;
  }
  return out;
}

/**
 * The old guard service's data endpoints (docs/design.md) on the agent: `POST /v1/cluster/data/actions/<action>`
 * starts the matching runbook and answers with its workflow id and Web UI link (the runbook's
 * progress is then Temporal's, not the agent's); an import may carry its archive as the body;
 * `GET /v1/cluster/data/archives/<kind>[/<id>.zip]` lists and serves this node's archives.
 */
export function dataRoutes(options: DataRoutesOptions): AgentRoutes {
  return (app: Hono, deps: AgentServerDeps) => {
    const { layout, logger } = deps;

    const started = async (
      c: Context,
      runbook: DataRunbookName,
      input: Record<string, unknown>,
    ) => {
      if (input.clusterId !== undefined && input.clusterId !== options.clusterId) {
        return refused(
          c,
          400,
          `this agent belongs to cluster ${options.clusterId}, not ${JSON.stringify(input.clusterId)}`,
          'send the request to an agent of that cluster, or leave clusterId out',
        );
      }
      const full = { master: deps.address, ...input, clusterId: options.clusterId };
      try {
        const { workflowId, runId } = await options.start(runbook, full);
        logger.info('data runbook started over HTTP', { runbook, workflowId, runId });
        const ui = options.webUi;
        return c.json(
          {
            runbook,
            workflowId,
            runId,
            ...(ui
              ? {
                  webUi: `${ui.url}/namespaces/${encodeURIComponent(ui.namespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`,
                }
              : {}),
          },
          202,
        );
      } catch (err) {
        if (err instanceof ClusterGuardError) {
          return refused(c, statusOf[err.type] ?? 500, err.message);
        }
        logger.error('could not start a data runbook', { runbook, error: (err as Error).message });
        return refused(
          c,
          503,
          `could not start ${runbook}: ${(err as Error).message}`,
          'the agent cannot reach Temporal; check temporal.address in its configuration',
        );
      }
    };

    /**
     * Stores an uploaded archive in import-data-archive/ under the id its manifest names, after
     * reading that manifest; anything that is not a clusterguard archive is deleted at once.
     * The whole archive is verified by importData before anything is imported.
     */
    const storeUpload = async (body: ReadableStream<Uint8Array>): Promise<string> => {
      const folder = layout.archiveFolder('import');
      await mkdir(folder, { recursive: true });
      const temp = path.join(folder, `.upload-${randomBytes(6).toString('hex')}.zip`);
      try {
        await pipeline(Readable.fromWeb(body as never), createWriteStream(temp, { flags: 'wx' }));
        const { manifest } = await readArchiveManifest(temp, 'the uploaded archive');
        const id = manifest.backupId;
        const target = path.join(folder, `${id}.zip`);
        const exists = await stat(target).then(
          () => true,
          () => false,
        );
        if (exists) {
          throw new ClusterGuardError(
            'ClusterBusy',
            `import-data-archive/${id}.zip already exists on ${deps.address}`,
          );
        }
        await rename(temp, target);
        logger.info('import archive uploaded', { id, file: target, from: manifest.clusterId });
        return id;
      } finally {
        await rm(temp, { force: true });
      }
    };

    app.post('/v1/cluster/data/actions/:action', async (c) => {
      const action = c.req.param('action');
      const runbook = actions[action];
      if (!runbook) {
        return refused(
          c,
          404,
          `no data action ${action}`,
          `one of ${Object.keys(actions).join(', ')}`,
        );
      }
      const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      if (
        action === 'import' &&
        (type === 'application/zip' || type === 'application/octet-stream')
      ) {
        const body = c.req.raw.body;
        if (!body) return refused(c, 400, 'the request has no body: send the archive');
        let archive: string;
        try {
          archive = await storeUpload(body);
        } catch (err) {
          if (err instanceof ClusterGuardError) {
            return refused(
              c,
              err.type === 'ClusterBusy' ? 409 : 422,
              err.message,
              err.type === 'ClusterBusy'
                ? 'import it by name ({"archive": "<id>"}) or delete it first'
                : 'upload a zip written by exportData or backupCluster',
            );
          }
          throw err;
        }
        return started(c, runbook, {
          ...importOptions(c.req.query()),
          node: deps.address,
          archive,
        });
      }
      if (action === 'import' && type === 'multipart/form-data') {
        let form: Awaited<ReturnType<typeof c.req.parseBody>>;
        try {
          form = await c.req.parseBody();
        } catch (err) {
          return refused(c, 400, `the multipart body could not be read: ${(err as Error).message}`);
        }
        const file = form.archive;
        if (!(file instanceof File)) {
          return refused(c, 400, 'the form has no file field "archive"');
        }
        let archive: string;
        try {
          archive = await storeUpload(file.stream());
        } catch (err) {
          if (err instanceof ClusterGuardError) {
            return refused(c, err.type === 'ClusterBusy' ? 409 : 422, err.message);
          }
          throw err;
        }
        return started(c, runbook, { ...importOptions(form), node: deps.address, archive });
      }
      let input: unknown;
      try {
        const text = await c.req.text();
        input = text.trim() ? JSON.parse(text) : {};
      } catch (err) {
        return refused(c, 400, `the body is not JSON: ${(err as Error).message}`);
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        return refused(c, 400, 'the body must be a JSON object: the runbook input');
      }
      return started(c, runbook, input as Record<string, unknown>);
    });

    const kindOf = (kind: string): ArchiveKind | undefined =>
      (archiveKinds as readonly string[]).includes(kind) ? (kind as ArchiveKind) : undefined;

    app.get('/v1/cluster/data/archives/:kind', async (c) => {
      const kind = kindOf(c.req.param('kind'));
      if (!kind)
        return refused(c, 404, `no archive kind ${c.req.param('kind')}`, archiveKinds.join(', '));
      const folder = layout.archiveFolder(kind);
      const names = await readdir(folder).catch(() => [] as string[]);
      const archives = [];
      for (const name of names) {
        const id = name.endsWith('.zip') ? name.slice(0, -4) : '';
        if (!isBackupId(id)) continue;
        const info = await stat(path.join(folder, name)).catch(() => undefined);
        if (info?.isFile())
          archives.push({ id, name, bytes: info.size, modifiedAt: info.mtime.toISOString() });
      }
      archives.sort((a, b) => compareBackupIds(a.id, b.id));
      return c.json({ node: deps.address, kind, archives });
    });

    app.get('/v1/cluster/data/archives/:kind/:name', async (c) => {
      const kind = kindOf(c.req.param('kind'));
      const name = c.req.param('name');
      const id = name.endsWith('.zip') ? name.slice(0, -4) : '';
      // Only `<backup id>.zip` in a known folder: nothing from the request becomes a path.
      if (!kind || !isBackupId(id)) {
        return refused(
          c,
          400,
          'expected /v1/cluster/data/archives/<import|export|backup|restore>/<id>.zip',
        );
      }
      const file = path.join(layout.archiveFolder(kind), `${id}.zip`);
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile())
        return refused(c, 404, `node ${deps.address} has no ${kind} archive ${id}`);
      logger.info('serving data archive', { kind, id, bytes: info.size });
      c.header('Content-Type', 'application/zip');
      c.header('Content-Length', String(info.size));
      c.header('Content-Disposition', `attachment; filename="${id}.zip"`);
      return c.body(Readable.toWeb(createReadStream(file)) as ReadableStream);
    });
  };
}
