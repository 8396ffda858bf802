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
import { connect } from '../../src/client.js';
import { resolveConnection } from '../../src/cli/settings.js';
import { loadAppConfig } from '../../src/config/app-config.js';
import { connectClient } from '../../src/temporal/connection.js';
import { freePort } from '../../src/temporal/dev-server.js';
import { startTlsProxy, type TlsProxy } from '../fixtures/grpc-tls-proxy.js';
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

async function openssl(dir: string, args: string[]): Promise<void> {
  await execa('openssl', args, { cwd: dir });
}

describe('TLS with a client certificate, through a TLS-terminating proxy', () => {
  let dir: string;
  let proxy: TlsProxy;
  let orchestrator: ChildProcess | undefined;
  let agent: ChildProcess | undefined;
  const tlsEnv: Record<string, string> = {};
  const logs: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-tls-'));
    // A throwaway CA, a server certificate for the proxy's address, a client certificate.
    await openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=clusterguard test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
    ]);
    // rustls (the SDK's TLS) takes X.509 v3 only: every certificate gets extensions.
    await writeFile(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
    await writeFile(
      path.join(dir, 'server.ext'),
      `subjectAltName=IP:${proxyHost},DNS:temporal.test\nextendedKeyUsage=serverAuth\n`,
    );
    for (const [name, subject, ext] of [
      ['server', '/CN=temporal.test', ['-extfile', 'server.ext']],
      ['client', '/CN=clusterguard-operator', ['-extfile', 'client.ext']],
    ] as const) {
      await openssl(dir, [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        subject,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      ]);
      await openssl(dir, [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '1',
        '-out',
        `${name}.pem`,
        ...ext,
      ]);
    }
    const file = (n: string) => readFile(path.join(dir, n));
    proxy = await startTlsProxy({
      listen: { host: proxyHost, port: await freePort() },
      upstream: testServer().address,
      key: await file('server.key'),
      cert: await file('server.pem'),
      ca: await file('ca.pem'),
    });
    Object.assign(tlsEnv, {
      CG_TEMPORAL__TLS__CA_FILE: path.join(dir, 'ca.pem'),
      CG_TEMPORAL__TLS__CERT_FILE: path.join(dir, 'client.pem'),
      CG_TEMPORAL__TLS__KEY_FILE: path.join(dir, 'client.key'),
      CG_TEMPORAL__TLS__SERVER_NAME: 'temporal.test',
    });
    const tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
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
      port: await freePort(),
      binDir: path.join(dir, 'bin'),
      env: tlsEnv,
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
});
