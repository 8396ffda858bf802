import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bundleRoutes } from '../../src/agent/bundle-routes.js';
import {
  createAgentApp,
  startAgentServer,
  type RunningAgentServer,
} from '../../src/agent/server.js';
import { agentBundles, pushBundle } from '../../src/bundles/client.js';
import { readJarIdentity } from '../../src/bundles/manifest.js';
import { BundleStore, InstalledStateFile } from '../../src/bundles/store.js';
import { NodeLayout } from '../../src/config/layout.js';
import type { BundleMeta } from '../../src/contracts/bundles.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import type { Logger } from '../../src/logger.js';
import { freePort } from '../../src/temporal/dev-server.js';
import { writeTestJar } from '../helpers/bundles.js';

const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

describe('bundle upload and download on a real agent socket at 127.0.0.41', () => {
  const host = '127.0.0.41';
  const token = randomBytes(24).toString('base64url');
  const maxUploadBytes = 200_000;
  const announced: BundleMeta[] = [];
  let dir: string;
  let layout: NodeLayout;
  let server: RunningAgentServer;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-bundle-http-'));
    layout = new NodeLayout(path.join(dir, 'node'));
    const app = createAgentApp({
      address: host,
      layout,
      token,
      logger: quiet,
      agentVersion: 'test',
      maxBodyBytes: 1024 * 1024,
      routes: [
        bundleRoutes({
          store: new BundleStore(layout.bundleStoreFolder),
          state: new InstalledStateFile(layout.bundleStateFile),
          maxUploadBytes,
          logger: quiet,
          onStored: (meta) => void announced.push(meta),
        }),
      ],
    });
    server = await startAgentServer(app, host, await freePort(host));
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const stored = async () => (await readdir(layout.bundleStoreFolder).catch(() => [])).sort();

  async function refusal(file: string, t = token): Promise<string> {
    try {
      await pushBundle({ url: server.url, token: t }, file);
    } catch (err) {
      assert.ok(err instanceof ClusterGuardError, String(err));
      return err.message;
    }
    return assert.fail(`${path.basename(file)} was accepted`);
  }

  test('bad uploads are refused with their reason and nothing is stored', async () => {
    const notJar = path.join(dir, 'notes.jar');
    await writeFile(notJar, 'this is not a zip archive');
    const noManifest = await writeTestJar(path.join(dir, 'no-manifest.jar'), { manifest: null });
    const noName = await writeTestJar(path.join(dir, 'no-name.jar'), {
      manifest: 'Manifest-Version: 1.0\r\nBundle-Version: 1.0.0\r\n\r\n',
    });
    const big = path.join(dir, 'big.jar');
    await writeFile(big, randomBytes(maxUploadBytes + 1000));
    const good = await writeTestJar(path.join(dir, 'good.jar'), { symbolicName: 'com.example.a' });

    assert.match(await refusal(notJar), /HTTP 422.*not a jar: the file is not a zip archive/);
    assert.match(
      await refusal(noManifest.file),
      /HTTP 422.*no manifest \(META-INF\/MANIFEST\.MF\)/,
    );
    assert.match(await refusal(noName.file), /HTTP 422.*no Bundle-SymbolicName/);
    assert.match(await refusal(big), /HTTP 413.*larger than this agent accepts/);
    assert.match(await refusal(good.file, 'wrong-token-wrong-token'), /HTTP 401.*cluster token/);
    assert.deepEqual(await stored(), [], 'nothing stored, no temp file left');
    assert.equal(announced.length, 0);
  });

  /** Sends headers and at most `body`, then reads the answer (the server may answer early). */
  function raw(
    headers: Record<string, string>,
    body: string,
  ): Promise<{ status: number; json: { error?: string } }> {
    const url = new URL('/v1/bundles', server.url);
    return new Promise((resolve, reject) => {
      const req = http.request(
        url,
        { method: 'POST', headers: { authorization: `Bearer ${token}`, ...headers } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as { error?: string } }),
          );
        },
      );
      req.on('error', reject);
      req.write(body);
      // A declared body that never comes: the answer must not wait for it.
      if (!headers['content-length']) req.end();
    });
  }

  test('a malformed multipart body and a declared 10 GiB upload get a 4xx that says why', async () => {
    const boundary = 'cg-boundary';
    const malformed = await raw(
      { 'content-type': `multipart/form-data; boundary=${boundary}` },
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jar"\r\n\r\nno closing boundary`,
    );
    assert.equal(malformed.status, 400, JSON.stringify(malformed.json));
    assert.match(
      malformed.json.error ?? '',
      /multipart body could not be read|no file in the form field/,
    );

    const huge = await raw(
      {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(10 * 1024 ** 3),
      },
      `--${boundary}\r\n`,
    );
    assert.equal(huge.status, 413, JSON.stringify(huge.json));
    assert.match(huge.json.error ?? '', /larger than this agent accepts \(1048576 bytes\)/);
    assert.deepEqual(await stored(), [], 'nothing stored');
  });

  test('a bundle is stored by sha256, announced once, listed, and served to other agents', async () => {
    const jar = await writeTestJar(path.join(dir, 'reports.jar'), {
      symbolicName: 'com.example.reports',
      version: '2.0.1',
    });
    const first = await pushBundle({ url: server.url, token }, jar.file);
    assert.deepEqual(first, {
      symbolicName: 'com.example.reports',
      version: '2.0.1',
      sha256: jar.sha256,
      bytes: jar.bytes,
      stored: 'new',
    });
    const again = await pushBundle({ url: server.url, token }, jar.file);
    assert.equal(again.stored, 'already');
    assert.deepEqual(
      announced.map((m) => [m.symbolicName, m.sha256]),
      [['com.example.reports', jar.sha256]],
    );
    assert.deepEqual(await stored(), [`${jar.sha256}.jar`, `${jar.sha256}.json`]);

    const listed = await agentBundles({ url: server.url, token });
    assert.deepEqual(
      listed.stored.map((m) => m.version),
      ['2.0.1'],
    );
    const res = await fetch(`${server.url}/v1/bundles/${jar.sha256}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(createHash('sha256').update(body).digest('hex'), jar.sha256);
    const anonymous = await fetch(`${server.url}/v1/bundles/${jar.sha256}`);
    assert.equal(anonymous.status, 401);
    const missing = await fetch(`${server.url}/v1/bundles/${'0'.repeat(64)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(missing.status, 404);
  });

  test('the identity is read from the jar itself', async () => {
    const jar = await writeTestJar(path.join(dir, 'x.jar'), {
      symbolicName: 'org.example.x',
      version: '3.4.5.qualifier',
    });
    assert.deepEqual(await readJarIdentity(jar.file), {
      symbolicName: 'org.example.x',
      version: '3.4.5.qualifier',
    });
  });
});
