import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createAgentApp,
  startAgentServer,
  type RunningAgentServer,
} from '../../src/agent/server.js';
import { NodeLayout } from '../../src/config/layout.js';
import type { Logger } from '../../src/logger.js';
import { freePort } from '../../src/temporal/dev-server.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A real HTTP request sent from `localAddress`, as another node on the machine would. */
function request(url: string, options: { from: string; token?: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      {
        localAddress: options.from,
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

describe("the node agent's HTTP API, on a real socket at 127.0.0.11", () => {
  const master = '127.0.0.11';
  const token = randomBytes(24).toString('base64url');
  const warnings: { message: string; fields?: Record<string, unknown> }[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message, fields) => warnings.push({ message, fields }),
    error: () => undefined,
  };
  let root: string;
  let server: RunningAgentServer;
  let archive12: Buffer;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-agent-http-'));
    const layout = new NodeLayout(root);
    await layout.ensureAll();
    archive12 = randomBytes(300_000);
    await writeFile(layout.distributionFileFor('127.0.0.12'), archive12);
    await writeFile(layout.distributionFileFor('127.0.0.11'), 'the master archive');
    const app = createAgentApp({
      address: master,
      layout,
      token,
      logger,
      agentVersion: 'test',
      maxBodyBytes: 1024,
      health: () => ({ clusterFile: { ok: true } }),
    });
    server = await startAgentServer(app, master, await freePort(master));
  });
  after(async () => {
    await server?.close();
    await rm(root, { recursive: true, force: true });
  });

  const download = (node: string) =>
    `${server.url}/v1/cluster/config/actions/download?node=${encodeURIComponent(node)}`;

  test('/healthz answers without a token', async () => {
    const res = await request(`${server.url}/healthz`, { from: '127.0.0.12' });
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body.toString()) as Record<string, unknown>;
    assert.equal(body.status, 'ok');
    assert.equal(body.address, master);
    assert.deepEqual(body.clusterFile, { ok: true });
  });

  test('a download without a token is refused with 401 and logged with its origin', async () => {
    const before = warnings.length;
    const res = await request(download('127.0.0.12'), { from: '127.0.0.12' });
    assert.equal(res.status, 401);
    assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    assert.match(res.body.toString(), /missing or wrong cluster token/);
    assert.ok(!res.body.includes(archive12.subarray(0, 64)));
    const logged = warnings.slice(before);
    assert.equal(logged.length, 1);
    assert.match(logged[0]!.message, /without a valid cluster token/);
    assert.equal(logged[0]!.fields?.from, '127.0.0.12');
  });

  test('a wrong token is refused with 401', async () => {
    const res = await request(download('127.0.0.12'), { from: '127.0.0.12', token: `${token}x` });
    assert.equal(res.status, 401);
  });

  test('a node downloads its own archive, byte for byte', async () => {
    const res = await request(download('127.0.0.12'), { from: '127.0.0.12', token });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/zip');
    assert.equal(Number(res.headers['content-length']), archive12.length);
    assert.ok(res.body.equals(archive12));
  });

  test("a node may not download another node's archive (403), even with the token", async () => {
    const before = warnings.length;
    const res = await request(download('127.0.0.11'), { from: '127.0.0.12', token });
    assert.equal(res.status, 403);
    assert.match(
      res.body.toString(),
      /node 127\.0\.0\.12 may not download the configuration of node 127\.0\.0\.11/,
    );
    assert.ok(!res.body.toString().includes('the master archive'));
    assert.equal(warnings.slice(before)[0]?.fields?.status, 403);
  });

  test('a node parameter that is not an address is refused (400) before any path is built', async () => {
    for (const node of ['../../conf/cluster', '/etc/passwd', '']) {
      const res = await request(download(node), { from: '127.0.0.12', token });
      assert.equal(res.status, 400, node);
    }
  });

  test('an archive that does not exist yet is a 404 that says to retry', async () => {
    const res = await request(download('127.0.0.13'), { from: '127.0.0.13', token });
    assert.equal(res.status, 404);
    assert.match(res.body.toString(), /no configuration archive for node 127\.0\.0\.13.*retry/s);
  });

  test('a second agent on the same address and port gets a clear error', async () => {
    const port = Number(new URL(server.url).port);
    const app = createAgentApp({
      address: master,
      layout: new NodeLayout(root),
      token,
      logger,
      agentVersion: 'test',
      maxBodyBytes: 1024,
    });
    await assert.rejects(
      startAgentServer(app, master, port),
      /agent port 127\.0\.0\.11:\d+ is already in use/,
    );
  });
});
