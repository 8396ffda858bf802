import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createAgentApp,
  startAgentServer,
  type RunningAgentServer,
} from '../../src/agent/server.js';
import { ClusterStore } from '../../src/config/cluster-store.js';
import { NodeLayout } from '../../src/config/layout.js';
import type { Logger } from '../../src/logger.js';
import { freePort } from '../../src/temporal/dev-server.js';

/**
 * Taking over a cluster formed by the old guard service (docs/design.md, "The old service's
 * formats we keep"): its cluster.json keeps its date format when written back, and its
 * configuration download request is served beside the current one. Agent on 127.0.0.194.
 */

const master = '127.0.0.194';
const member = '127.0.0.195';
const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

function post(
  url: string,
  body: string,
  options: { from: string; token?: string },
): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        localAddress: options.from,
        headers: {
          'content-type': 'application/json',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type']),
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('takeover of a cluster formed by the old guard service', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-takeover-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const oldFile = (datetime: unknown) => ({
    cluster: {
      datetime,
      nodes: [master, member],
      decommissionNodes: [],
      clusterConfigReady: true,
      nodeConfigReady: true,
      nodeIsMaster: true,
      nodeIsRejoin: false,
    },
    history: [{ datetime, cluster: [master] }],
  });
  const at = new Date('2026-12-06T03:30:07.000Z');

  async function updated(name: string, datetime: unknown, setting?: 'iso' | 'legacy' | 'epoch') {
    const file = path.join(root, `${name}.json`);
    await writeFile(file, JSON.stringify(oldFile(datetime)));
    const store = new ClusterStore({
      file,
      now: () => at,
      ...(setting ? { dateFormat: setting } : {}),
    });
    await store.update((f) => ({ ...f, cluster: { ...f.cluster, nodeIsRejoin: true } }), 'test');
    const written = JSON.parse(await readFile(file, 'utf8')) as {
      cluster: { datetime: unknown };
      history: { datetime: unknown }[];
    };
    // What was written still loads, as the same instants.
    assert.equal((await store.load()).cluster.datetime, at.toISOString());
    return { now: written.cluster.datetime, history: written.history.map((h) => h.datetime) };
  }

  test("the old service's date format is written back as it came, at its offset", async () => {
    const w = await updated('legacy', 'Wed Oct 24 2018 11:19:25 GMT+0800');
    assert.equal(w.now, 'Sun Dec 06 2026 11:30:07 GMT+0800');
    assert.deepEqual(w.history, [
      'Wed Oct 24 2018 11:19:25 GMT+0800',
      'Sun Dec 06 2026 11:30:07 GMT+0800',
    ]);
  });

  test('a zone name suffix and a negative offset are kept', async () => {
    const w = await updated('named', 'Tue Mar 05 2019 07:00:00 GMT-0530 (Somewhere Time)');
    assert.equal(w.now, 'Sat Dec 05 2026 22:00:07 GMT-0530 (Somewhere Time)');
  });

  test('epoch milliseconds stay epoch milliseconds, ISO stays ISO', async () => {
    assert.equal((await updated('epoch', 1540351165000)).now, at.getTime());
    assert.equal((await updated('iso', '2018-10-24T03:19:25Z')).now, at.toISOString());
  });

  test('a configured format wins over the one the file came in', async () => {
    assert.equal(
      (await updated('to-iso', 'Wed Oct 24 2018 11:19:25 GMT+0800', 'iso')).now,
      at.toISOString(),
    );
    assert.equal((await updated('to-epoch', '2018-10-24T03:19:25Z', 'epoch')).now, at.getTime());
    // Legacy from a legacy file keeps the file's offset.
    assert.equal(
      (await updated('to-legacy', 'Wed Oct 24 2018 11:19:25 GMT+0800', 'legacy')).now,
      'Sun Dec 06 2026 11:30:07 GMT+0800',
    );
  });

  describe("the old service's download request, on a real socket", () => {
    const token = randomBytes(24).toString('base64url');
    let server: RunningAgentServer;
    let archive: Buffer;
    before(async () => {
      const layout = new NodeLayout(path.join(root, 'node'));
      await layout.ensureAll();
      archive = randomBytes(50_000);
      await writeFile(layout.distributionFileFor(member), archive);
      const app = createAgentApp({
        address: master,
        layout,
        token,
        logger: quiet,
        agentVersion: 'test',
        maxBodyBytes: 1024,
      });
      server = await startAgentServer(app, master, await freePort(master));
    });
    after(async () => {
      await server?.close();
    });
    const url = () => `${server.url}/guard/v1/config/actions/download`;
    const oldBody = JSON.stringify({ nodes: [master, member], currentNode: member });

    test('POST /guard/v1/config/actions/download {nodes, currentNode} answers the archive', async () => {
      const res = await post(url(), oldBody, { from: member, token });
      assert.equal(res.status, 200);
      assert.equal(res.type, 'application/zip');
      assert.ok(res.body.equals(archive));
    });

    test('it needs the cluster token, and the node asks for its own archive', async () => {
      assert.equal((await post(url(), oldBody, { from: member })).status, 401);
      const other = await post(url(), JSON.stringify({ nodes: [master], currentNode: master }), {
        from: member,
        token,
      });
      assert.equal(other.status, 403);
    });

    test('a body that is not the old request is a 400 that says what is expected', async () => {
      for (const body of ['not json', '{"nodes":["x"]}', '[]']) {
        const res = await post(url(), body, { from: member, token });
        assert.equal(res.status, 400, body);
        assert.match(res.body.toString(), /currentNode/);
      }
    });
  });
});
