import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import {
  agentReadyLine,
  orchestratorReadyLine,
  spawnNodeAgent,
  spawnOrchestrator,
  type ChildProcess,
} from '../../src/dev/processes.js';
import { repoRoot } from '../../src/process.js';
import { connect } from '../../src/client/index.js';
import { resolveConnection } from '../../src/cli/settings.js';
import { loadAppConfig } from '../../src/config/app-config.js';
import { connectClient } from '../../src/temporal/connection.js';
import { agentRequest } from '../../src/agent/tls.js';
import { freePort } from '../../src/temporal/dev-server.js';
import { startTlsProxy, type TlsProxy } from '../fixtures/grpc-tls-proxy.js';
import { TestCa, type IssuedCert } from '../helpers/certs.js';
import { writeTestJar } from '../helpers/bundles.js';
import { testServer } from '../helpers/temporal.js';

/**
 * TLS with client certificates to Temporal: the dev server has no TLS, so a TLS-terminating
 * gRPC proxy (a STAND-IN for nginx's grpc_pass, test/fixtures/grpc-tls-proxy.ts) sits in front
 * of it on 127.0.0.91 and requires a client certificate of a throwaway CA made here with
 * openssl. The orchestrator and a node agent (real processes, `temporal.tls.*` from the
 * environment) and the CLI connect only through it; a pingCluster then runs end to end. A client
 * without a certificate is refused; the same settings as a `temporal` CLI profile get through.
 */
const proxyHost = '127.0.0.91';
const agentNode = '127.0.0.92';
const taskQueue = `cg-tls-${randomBytes(3).toString('hex')}`;
const temporalBin = process.env.CG_TEMPORAL_BIN ?? path.join(repoRoot, '.tools', 'bin', 'temporal');

describe('TLS with a client certificate, through a TLS-terminating proxy', () => {
  let dir: string;
  let proxy: TlsProxy;
  let orchestrator: ChildProcess | undefined;
  let agent: ChildProcess | undefined;
  const tlsEnv: Record<string, string> = {};
  let agentCert: IssuedCert;
  let agentPort: number;
  let tokenFile: string;
  const logs: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-tls-'));
    // A throwaway CA; a certificate for the proxy, one for clients, one for the agent's HTTPS.
    const ca = await TestCa.create(dir);
    const server = await ca.issue('server', {
      ips: [proxyHost],
      dns: ['temporal.test'],
      usage: ['serverAuth'],
    });
    const client = await ca.issue('client', { usage: ['clientAuth'] });
    agentCert = await ca.issue('agent', { ips: [agentNode], usage: ['serverAuth', 'clientAuth'] });
    proxy = await startTlsProxy({
      listen: { host: proxyHost, port: await freePort() },
      upstream: testServer().address,
      key: await readFile(server.key),
      cert: await readFile(server.cert),
      ca: await readFile(ca.cert),
    });
    Object.assign(tlsEnv, {
      CG_TEMPORAL__TLS__CA_FILE: ca.cert,
      CG_TEMPORAL__TLS__CERT_FILE: client.cert,
      CG_TEMPORAL__TLS__KEY_FILE: client.key,
      CG_TEMPORAL__TLS__SERVER_NAME: 'temporal.test',
    });
    tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    agentPort = await freePort(agentNode);
    orchestrator = spawnOrchestrator({
      temporalAddress: proxy.address,
      taskQueue,
      env: { ...tlsEnv, CG_EVENTS__ENABLED: 'false' },
      onLine: (l) => {
        logs.push(`[orchestrator] ${l}`);
        if (process.env.CG_DEBUG_TLS) console.error(l);
      },
    });
    agent = spawnNodeAgent({
      address: agentNode,
      root: path.join(dir, 'node'),
      temporalAddress: proxy.address,
      tokenFile,
      port: agentPort,
      binDir: path.join(dir, 'bin'),
      env: {
        ...tlsEnv,
        // The agent's own API over mutual TLS, from the same CA.
        CG_AGENT__TLS__CERT_FILE: agentCert.cert,
        CG_AGENT__TLS__KEY_FILE: agentCert.key,
        CG_AGENT__TLS__CA_FILE: ca.cert,
        CG_AGENT__TLS__REQUIRE_CLIENT_CERT: 'true',
      },
      onLine: (l) => logs.push(`[agent] ${l}`),
    });
    await Promise.all([
      orchestrator.waitForLine(orchestratorReadyLine, 120_000),
      agent.waitForLine(agentReadyLine, 60_000),
    ]);
  });
  after(async () => {
    await agent?.stop();
    await orchestrator?.stop();
    await proxy?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the orchestrator, an agent and the CLI work through it; no certificate, no entry', async () => {
    const cli = await execa(
      process.execPath,
      [
        path.join(repoRoot, 'bin', 'clusterguard.mjs'),
        'ping',
        '--cluster',
        'tls',
        '--nodes',
        agentNode,
        '--wait',
        '--json',
      ],
      {
        cwd: repoRoot,
        reject: false,
        timeout: 90_000,
        env: {
          TEMPORAL_ADDRESS: proxy.address,
          TEMPORAL_TLS_CA: path.join(dir, 'ca.pem'),
          TEMPORAL_TLS_CERT: path.join(dir, 'client.pem'),
          TEMPORAL_TLS_KEY: path.join(dir, 'client.key'),
          TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
          CLUSTERGUARD_TASK_QUEUE: taskQueue,
        },
      },
    );
    assert.equal(cli.exitCode, 0, `${cli.stdout}\n${cli.stderr}\n${logs.slice(-20).join('\n')}`);
    const outcome = JSON.parse(cli.stdout) as {
      status: string;
      result: { nodes: { address: string }[] };
    };
    assert.equal(outcome.status, 'COMPLETED');
    assert.deepEqual(
      outcome.result.nodes.map((n) => n.address),
      [agentNode],
    );

    // The same server without a client certificate: refused in the handshake.
    const before = proxy.refused;
    await assert.rejects(
      connectClient({
        address: proxy.address,
        namespace: 'default',
        tls: { caFile: path.join(dir, 'ca.pem'), serverName: 'temporal.test' },
      }).then(async (c) => {
        try {
          await c.workflowService.getSystemInfo({});
        } finally {
          await c.connection.close();
        }
      }),
    );
    assert.ok(proxy.refused > before, 'the proxy refused the handshake');

    // The same settings as a `temporal` CLI profile, written by `temporal config set`: the
    // processes' config (`temporal.profile`) and the CLI's settings (`--profile`) get through.
    const toml = path.join(dir, 'temporal.toml');
    const props: [string, string][] = [
      ['address', proxy.address],
      ['tls.client_cert_path', path.join(dir, 'client.pem')],
      ['tls.client_key_path', path.join(dir, 'client.key')],
      ['tls.server_ca_cert_path', path.join(dir, 'ca.pem')],
      ['tls.server_name', 'temporal.test'],
    ];
    for (const [prop, value] of props) {
      const set = ['config', 'set', '--config-file', toml, '--profile', 'tls'];
      await execa(temporalBin, [...set, '--prop', prop, '--value', value]);
    }
    const config = await loadAppConfig({
      env: { CG_TEMPORAL__PROFILE: 'tls', CG_TEMPORAL__CONFIG_FILE: toml },
    });
    const cliSettings = resolveConnection({ profile: 'tls', configFile: toml }, {});
    for (const client of [
      await connectClient(config.temporal),
      await connect(cliSettings.connect),
    ]) {
      try {
        await client.workflowService.getSystemInfo({});
      } finally {
        await client.connection.close();
      }
    }
  });

  test("the agent's API over mutual TLS: its peers' CA and a client certificate, or no entry", async () => {
    const base = `https://${agentNode}:${agentPort}`;
    const ca = await readFile(path.join(dir, 'ca.pem'));
    const withCert = {
      ca,
      cert: await readFile(path.join(dir, 'client.pem')),
      key: await readFile(path.join(dir, 'client.key')),
    };
    const health = await agentRequest(`${base}/healthz`, {}, withCert, async (res) => {
      assert.equal(res.status, 200);
      return (await res.json()) as { address: string };
    });
    assert.equal(health.address, agentNode);
    await assert.rejects(agentRequest(`${base}/healthz`, {}, { ca }, (res) => res.status));
    await assert.rejects(fetch(`http://${agentNode}:${agentPort}/healthz`));

    // The CLI pushes a bundle to it with the agents' CA and a client certificate.
    const jar = await writeTestJar(path.join(dir, 'tls.jar'), { symbolicName: 'com.example.tls' });
    const push = (extra: string[]) =>
      execa(
        process.execPath,
        [path.join(repoRoot, 'bin', 'clusterguard.mjs'), 'bundle', 'push', jar.file]
          .concat(['--agent', base, '--token-file', tokenFile, '--json'])
          .concat(extra),
        { cwd: repoRoot, reject: false, timeout: 60_000 },
      );
    const pushed = await push([
      '--agent-ca',
      path.join(dir, 'ca.pem'),
      '--agent-cert',
      path.join(dir, 'client.pem'),
      '--agent-key',
      path.join(dir, 'client.key'),
    ]);
    assert.equal(pushed.exitCode, 0, `${pushed.stdout}\n${pushed.stderr}`);
    assert.equal((JSON.parse(pushed.stdout) as { sha256: string }).sha256, jar.sha256);
    const untrusted = await push([]);
    assert.notEqual(untrusted.exitCode, 0);
    assert.match(untrusted.stdout + untrusted.stderr, /not signed by a trusted CA.*--agent-ca/);
  });
});
