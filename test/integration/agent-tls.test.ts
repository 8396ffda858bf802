import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityInterceptors } from '../../activities/interceptor.js';
import { DefaultLogger } from '@temporalio/worker';
import { createBundleActivities } from '../../activities/bundle-activities.js';
import { createMembershipActivities } from '../../activities/membership-activities.js';
import { bundleRoutes } from '../../src/agent/bundle-routes.js';
import {
  createAgentApp,
  startAgentServer,
  type RunningAgentServer,
} from '../../src/agent/server.js';
import {
  agentRequest,
  describeTlsError,
  loadAgentTls,
  loadClientTls,
  type ClientTls,
} from '../../src/agent/tls.js';
import { agentBundles, pushBundle } from '../../src/bundles/client.js';
import { BundleStore, InstalledStateFile } from '../../src/bundles/store.js';
import { appConfigSchema } from '../../src/config/app-config.js';
import { ClusterStore } from '../../src/config/cluster-store.js';
import { NodeLayout } from '../../src/config/layout.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import type { Logger } from '../../src/logger.js';
import { freePort } from '../../src/temporal/dev-server.js';
import { TestCa } from '../helpers/certs.js';
import { writeTestJar } from '../helpers/bundles.js';

const master = '127.0.0.96';
const node = '127.0.0.97';
const other = '127.0.0.98';

const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Runs an activity in a mock activity context (no worker: these are HTTP tests). */
function inActivity<R>(call: () => Promise<R>): Promise<R> {
  const env = new MockActivityEnvironment(undefined, {
    logger: new DefaultLogger('ERROR'),
    interceptors: activityInterceptors(),
  });
  return env.run(call);
}

/** A plain-HTTP GET, to show the HTTPS port does not answer one. */
function plainGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('no answer')));
  });
}

/**
 * The agents' own HTTP API over TLS (issue 9: agent hardening): a throwaway CA issues each node
 * a certificate naming its address; agents verify each other against that CA and, with
 * `requireClientCert`, accept only clients holding a certificate from it.
 */
describe('agent HTTPS with the agents’ CA and client certificates (127.0.0.96–.98)', () => {
  const token = randomBytes(24).toString('base64url');
  let dir: string;
  let ca: TestCa;
  let port: number;
  let server: RunningAgentServer;
  const layouts = new Map<string, NodeLayout>();
  const tlsOf = new Map<string, ClientTls>();

  const layoutOf = (address: string): NodeLayout => {
    const layout = layouts.get(address);
    assert.ok(layout, address);
    return layout;
  };
  const clientTlsOf = (address: string): ClientTls => {
    const tls = tlsOf.get(address);
    assert.ok(tls, address);
    return tls;
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-agent-tls-'));
    ca = await TestCa.create(dir, 'clusterguard agents CA');
    for (const address of [master, node, other]) {
      const layout = new NodeLayout(path.join(dir, address));
      await layout.ensureAll();
      layouts.set(address, layout);
      const files = await ca.issue(`agent-${address}`, {
        ips: [address],
        usage: ['serverAuth', 'clientAuth'],
      });
      // What each agent's config would say; parsed by the real schema.
      const config = appConfigSchema.parse({
        agent: {
          tls: {
            certFile: files.cert,
            keyFile: files.key,
            caFile: ca.cert,
            requireClientCert: 'true',
          },
        },
      });
      const tls = await loadAgentTls(config.agent.tls);
      assert.ok(tls);
      tlsOf.set(address, tls);
    }
    port = await freePort(master);
    const masterLayout = layoutOf(master);
    const app = createAgentApp({
      address: master,
      layout: masterLayout,
      token,
      logger: quiet,
      agentVersion: 'test',
      maxBodyBytes: 1024 * 1024,
      routes: [
        bundleRoutes({
          store: new BundleStore(masterLayout.bundleStoreFolder),
          state: new InstalledStateFile(masterLayout.bundleStateFile),
          maxUploadBytes: 1024 * 1024,
          logger: quiet,
          onStored: () => undefined,
        }),
      ],
    });
    const masterTls = await loadAgentTls(
      appConfigSchema.parse({
        agent: {
          tls: {
            certFile: path.join(dir, `agent-${master}.pem`),
            keyFile: path.join(dir, `agent-${master}.key`),
            caFile: ca.cert,
            requireClientCert: true,
          },
        },
      }).agent.tls,
    );
    server = await startAgentServer(app, master, port, masterTls);
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the agent serves https only; a client with the CA and a certificate gets in', async () => {
    assert.equal(server.url, `https://${master}:${port}`);
    const status = await agentRequest(
      `${server.url}/healthz`,
      {},
      clientTlsOf(node),
      async (res) => {
        const body = (await res.json()) as { status: string; address: string };
        assert.deepEqual([body.status, body.address], ['ok', master]);
        return res.status;
      },
    );
    assert.equal(status, 200);
    // The token is still needed behind TLS.
    const refused = await agentRequest(
      `${server.url}/v1/bundles`,
      {},
      clientTlsOf(node),
      (res) => res.status,
    );
    assert.equal(refused, 401);
    // Plain HTTP on the TLS port gets no HTTP answer at all.
    await assert.rejects(plainGet(`http://${master}:${port}/healthz`));
  });

  test('a client without the CA, or without a client certificate, is refused with a clear reason', async () => {
    const noCa = await agentRequest(`${server.url}/healthz`, {}, {}, () => 'answered').catch(
      (err: unknown) => describeTlsError(err, server.url) ?? String(err),
    );
    assert.match(
      noCa,
      /not signed by a trusted CA \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\).*agent\.tls\.caFile/,
    );

    const caOnly = await loadClientTls({ caFile: ca.cert });
    await assert.rejects(
      agentRequest(`${server.url}/healthz`, {}, caOnly, (res) => res.status),
      'the handshake must fail without a client certificate',
    );

    const strangerCa = await TestCa.create(await mkdtemp(path.join(dir, 'stranger-')), 'stranger');
    const stranger = await strangerCa.issue('stranger', { ips: [node], usage: ['clientAuth'] });
    const withStrangerCert = await loadClientTls({
      caFile: ca.cert,
      certFile: stranger.cert,
      keyFile: stranger.key,
    });
    await assert.rejects(
      agentRequest(`${server.url}/healthz`, {}, withStrangerCert, (res) => res.status),
      'a certificate from another CA must not get in',
    );
    await assert.rejects(
      loadClientTls({ certFile: stranger.cert }),
      /both a client certificate and its key/,
    );
    await assert.rejects(
      loadAgentTls({
        certFile: path.join(dir, 'missing.pem'),
        keyFile: stranger.key,
        requireClientCert: false,
      }),
      (err) => err instanceof ClusterGuardError && /agent\.tls\.certFile/.test(err.message),
    );
  });

  test('a node downloads its configuration archive over mutual TLS; a certificate naming another node is refused', async () => {
    // What the master's packDistribution would have written for the node.
    const certs = layoutOf(master).clusterConfigFor(node, 'cockroach');
    await mkdir(certs, { recursive: true });
    await writeFile(path.join(certs, 'node.key'), randomBytes(512));
    await chmod(path.join(certs, 'node.key'), 0o600);
    const masterActivities = createMembershipActivities({
      address: master,
      layout: layoutOf(master),
      clusterStore: new ClusterStore({ file: layoutOf(master).clusterFile }),
      token,
      agentPort: port,
      agentTls: clientTlsOf(master),
      logger: quiet,
    });
    const packed = await inActivity(() => masterActivities.packDistribution({ nodes: [node] }));

    const nodeActivities = (tls: ClientTls) =>
      createMembershipActivities({
        address: node,
        layout: layoutOf(node),
        clusterStore: new ClusterStore({ file: layoutOf(node).clusterFile }),
        token,
        agentPort: port,
        agentTls: tls,
        logger: quiet,
        downloadRetry: { initialMs: 20, maxMs: 100 },
      });
    const got = await inActivity(() =>
      nodeActivities(clientTlsOf(node)).downloadDistribution({
        master,
        expectedSha256: packed.archives[0]?.sha256,
      }),
    );
    assert.equal(got.attempts, 1);
    assert.deepEqual(
      await readFile(path.join(layoutOf(node).clusterConfigFor(node, 'cockroach'), 'node.key')),
      await readFile(path.join(certs, 'node.key')),
    );

    // The right source address with another node's certificate: the certificate decides.
    await assert.rejects(
      inActivity(() => nodeActivities(clientTlsOf(other)).downloadDistribution({ master })),
      (err) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, 'Unauthorized');
        assert.match(
          err.message,
          /client certificate of 127\.0\.0\.97 names 127\.0\.0\.98, not node 127\.0\.0\.97/,
        );
        return true;
      },
    );
  });

  test('a bundle is pushed over https and fetched by another agent over mutual TLS', async () => {
    const jar = await writeTestJar(path.join(dir, 'tls-bundle.jar'), {
      symbolicName: 'com.example.tls',
      version: '1.0.0',
    });
    const cli = await loadClientTls({
      caFile: ca.cert,
      certFile: path.join(dir, `agent-${other}.pem`),
      keyFile: path.join(dir, `agent-${other}.key`),
    });
    assert.ok(cli);
    const pushed = await pushBundle({ url: server.url, token, tls: cli }, jar.file);
    assert.equal(pushed.stored, 'new');
    const listed = await agentBundles({ url: server.url, token, tls: cli });
    assert.deepEqual(
      listed.stored.map((b) => b.sha256),
      [pushed.sha256],
    );

    const nodeLayout = layoutOf(node);
    const activities = createBundleActivities({
      address: node,
      store: new BundleStore(nodeLayout.bundleStoreFolder),
      state: new InstalledStateFile(nodeLayout.bundleStateFile),
      deployFolder: nodeLayout.bundleDeployFolder,
      healthChecks: {},
      token,
      agentPort: port,
      agentTls: clientTlsOf(node),
      logger: quiet,
    });
    const installed = await inActivity(() =>
      activities.installBundle({
        sha256: pushed.sha256,
        symbolicName: 'com.example.tls',
        version: '1.0.0',
        sources: [master],
        workflowId: 'cg/tls/bundle/com.example.tls',
        runId: 'run-1',
        datetime: new Date().toISOString(),
      }),
    );
    assert.deepEqual([installed.node, installed.outcome], [node, 'installed']);
    assert.equal(
      await readFile(path.join(nodeLayout.bundleDeployFolder, 'com.example.tls.jar'), 'hex'),
      await readFile(jar.file, 'hex'),
    );
  });
});
