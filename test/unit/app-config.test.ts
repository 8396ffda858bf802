import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { envKeyToPath, loadAppConfig, resolveAgentToken } from '../../src/config/app-config.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';

describe('application config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const rejectsWith = (pattern: RegExp) => (err: unknown) =>
    err instanceof ClusterGuardError && err.type === 'InvalidConfig' && pattern.test(err.message);

  test('defaults give a production node: seed root, port 7700, task queue clusterguard', async () => {
    const config = await loadAppConfig({ env: {} });
    assert.equal(config.node.root, '/ibnsdata/guard');
    assert.equal(config.node.address, '127.0.0.1');
    assert.equal(config.agent.port, 7700);
    assert.equal(config.temporal.taskQueue, 'clusterguard');
    assert.equal(config.temporal.address, '127.0.0.1:7233');
  });

  test('YAML file, then environment: the environment wins, numbers are coerced', async () => {
    const file = path.join(dir, 'a.yaml');
    await writeFile(
      file,
      'clusterId: plant-7\nnode:\n  address: 172.18.135.11\n  root: /data/guard\nagent:\n  port: 7800\n',
    );
    const config = await loadAppConfig({
      file,
      env: { CG_AGENT__PORT: '7900', CG_TEMPORAL__TASK_QUEUE: 'cg-alt', OTHER: 'x' },
    });
    assert.equal(config.clusterId, 'plant-7');
    assert.equal(config.node.address, '172.18.135.11');
    assert.equal(config.node.root, '/data/guard');
    assert.equal(config.agent.port, 7900);
    assert.equal(config.temporal.taskQueue, 'cg-alt');
  });

  test('CG_CONFIG names the file', async () => {
    const file = path.join(dir, 'b.yaml');
    await writeFile(file, 'clusterId: from-cg-config\n');
    const config = await loadAppConfig({ env: { CG_CONFIG: file } });
    assert.equal(config.clusterId, 'from-cg-config');
  });

  test('env keys map to camelCase paths', () => {
    assert.deepEqual(envKeyToPath('CG_AGENT__MAX_BODY_BYTES'), ['agent', 'maxBodyBytes']);
    assert.deepEqual(envKeyToPath('CG_CLUSTER_ID'), ['clusterId']);
  });

  test('every invalid key is named with the expected value and where it came from', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'node:\n  address: 999.1.1.1\n');
    await assert.rejects(
      loadAppConfig({ file, env: { CG_AGENT__PORT: 'eighty' } }),
      (err: unknown) =>
        rejectsWith(/node\.address: expected an IPv4 address/)(err) &&
        rejectsWith(new RegExp(`from ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`))(err) &&
        rejectsWith(/agent\.port: .*number.*\(from environment variable CG_AGENT__PORT\)/)(err),
    );
  });

  test('middleware options: defaults, YAML topics and env ports; a bad value names its key', async () => {
    const file = path.join(dir, 'mw.yaml');
    await writeFile(
      file,
      'middleware:\n  kafka:\n    topics:\n      - name: events\n        partitions: 6\n' +
        '  zookeeper:\n    operationOptions:\n      startServer:\n        timeoutMs: 90000\n',
    );
    const config = await loadAppConfig({
      file,
      env: { CG_MIDDLEWARE__ZOOKEEPER__CLIENT_PORT: '2281' },
    });
    assert.equal(config.middleware.zookeeper.clientPort, 2281);
    assert.equal(config.middleware.zookeeper.peerPort, 2888);
    assert.equal(config.middleware.zookeeper.operationOptions?.startServer?.timeoutMs, 90000);
    assert.deepEqual(config.middleware.kafka.topics, [{ name: 'events', partitions: 6 }]);
    assert.equal(config.middleware.kafka.brokerPort, 9092);
    assert.equal(config.middleware.cockroach.sqlPort, 26257);
    assert.deepEqual(config.middleware.enabled, ['cockroach', 'zookeeper', 'kafka']);
    assert.deepEqual(config.middleware.controller.dataFolders, []);

    await assert.rejects(
      loadAppConfig({ env: { CG_MIDDLEWARE__KAFKA__BROKER_PORT: '70000' } }),
      rejectsWith(
        /middleware\.kafka\.brokerPort: .*65535.*\(from environment variable CG_MIDDLEWARE__KAFKA__BROKER_PORT\)/,
      ),
    );
    const bad = path.join(dir, 'mw-bad.yaml');
    await writeFile(
      bad,
      'middleware:\n  enabled: [zookeeper, mongodb]\n  zookeeper:\n    operationOptions:\n      reboot: {}\n',
    );
    await assert.rejects(
      loadAppConfig({ file: bad, env: {} }),
      (err: unknown) =>
        rejectsWith(/middleware\.enabled\.1: /)(err) &&
        rejectsWith(/middleware\.zookeeper\.operationOptions/)(err),
    );
  });

  test('a YAML syntax error names the file', async () => {
    const file = path.join(dir, 'syntax.yaml');
    await writeFile(file, 'node:\n  address: [unclosed\n');
    await assert.rejects(
      loadAppConfig({ file, env: {} }),
      rejectsWith(/syntax\.yaml is not valid YAML/),
    );
  });

  test('a top-level list is refused', async () => {
    const file = path.join(dir, 'list.yaml');
    await writeFile(file, '- a\n- b\n');
    await assert.rejects(loadAppConfig({ file, env: {} }), rejectsWith(/mapping at the top level/));
  });

  test('a missing file is an error only when required', async () => {
    const missing = path.join(dir, 'nope.yaml');
    assert.equal((await loadAppConfig({ file: missing, env: {} })).clusterId, 'default');
    await assert.rejects(
      loadAppConfig({ file: missing, required: true, env: {} }),
      rejectsWith(/cannot read config file .*nope\.yaml/),
    );
  });

  test('the agent token comes from agent.token or the first line of agent.tokenFile', async () => {
    const tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, 'abcdefghijklmnopqrstuvwxyz\nignored\n');
    const fromFile = await loadAppConfig({ env: { CG_AGENT__TOKEN_FILE: tokenFile } });
    assert.equal(await resolveAgentToken(fromFile), 'abcdefghijklmnopqrstuvwxyz');
    const inline = await loadAppConfig({ env: { CG_AGENT__TOKEN: '0123456789abcdef0123' } });
    assert.equal(await resolveAgentToken(inline), '0123456789abcdef0123');
  });

  test('no token, a short token or an unreadable token file is refused with what to set', async () => {
    await assert.rejects(
      resolveAgentToken(await loadAppConfig({ env: {} })),
      rejectsWith(/CG_AGENT__TOKEN/),
    );
    await assert.rejects(
      loadAppConfig({ env: { CG_AGENT__TOKEN: 'short' } }),
      rejectsWith(/agent\.token: .*16/),
    );
    const short = path.join(dir, 'short-token');
    await writeFile(short, 'tiny\n');
    await assert.rejects(
      resolveAgentToken(await loadAppConfig({ env: { CG_AGENT__TOKEN_FILE: short } })),
      rejectsWith(/at least 16 characters/),
    );
    await assert.rejects(
      resolveAgentToken(
        await loadAppConfig({ env: { CG_AGENT__TOKEN_FILE: path.join(dir, 'none') } }),
      ),
      rejectsWith(/agent\.tokenFile: cannot read/),
    );
  });
});

describe('application config: agent TLS', () => {
  const rejectsWith = (pattern: RegExp) => (err: unknown) =>
    err instanceof ClusterGuardError && err.type === 'InvalidConfig' && pattern.test(err.message);

  test('off by default; from the environment, files and a mutual-TLS switch', async () => {
    assert.equal((await loadAppConfig({ env: {} })).agent.tls, undefined);
    const config = await loadAppConfig({
      env: {
        CG_AGENT__TLS__CERT_FILE: '/etc/cg/agent.pem',
        CG_AGENT__TLS__KEY_FILE: '/etc/cg/agent.key',
        CG_AGENT__TLS__CA_FILE: '/etc/cg/agents-ca.pem',
        CG_AGENT__TLS__REQUIRE_CLIENT_CERT: 'true',
      },
    });
    assert.deepEqual(config.agent.tls, {
      certFile: '/etc/cg/agent.pem',
      keyFile: '/etc/cg/agent.key',
      caFile: '/etc/cg/agents-ca.pem',
      requireClientCert: true,
    });
  });

  test('a key without its certificate, or mutual TLS without a CA, is refused by name', async () => {
    await assert.rejects(
      loadAppConfig({ env: { CG_AGENT__TLS__KEY_FILE: '/etc/cg/agent.key' } }),
      rejectsWith(/agent\.tls\.certFile: Invalid input: expected string, received undefined/),
    );
    await assert.rejects(
      loadAppConfig({
        env: {
          CG_AGENT__TLS__CERT_FILE: '/etc/cg/agent.pem',
          CG_AGENT__TLS__KEY_FILE: '/etc/cg/agent.key',
          CG_AGENT__TLS__REQUIRE_CLIENT_CERT: 'yes',
        },
      }),
      rejectsWith(/agent\.tls: requireClientCert needs caFile/),
    );
  });
});

describe('application config: events', () => {
  test('defaults: enabled, brokers from the nodes on port 9092, spool under .data', async () => {
    const config = await loadAppConfig({ env: {} });
    assert.deepEqual(config.events, {
      enabled: true,
      kafkaPort: 9092,
      spoolFile: '.data/events-spool.jsonl',
    });
  });

  test('environment: a boolean, a comma-separated broker list, a port; bad brokers are named', async () => {
    const config = await loadAppConfig({
      env: {
        CG_EVENTS__ENABLED: 'false',
        CG_EVENTS__BROKERS: '10.0.0.1:9092, kafka-2:9094',
        CG_EVENTS__KAFKA_PORT: '9192',
        CG_EVENTS__SPOOL_FILE: '/var/spool/cg.jsonl',
      },
    });
    assert.deepEqual(config.events, {
      enabled: false,
      brokers: ['10.0.0.1:9092', 'kafka-2:9094'],
      kafkaPort: 9192,
      spoolFile: '/var/spool/cg.jsonl',
    });
    await assert.rejects(
      loadAppConfig({ env: { CG_EVENTS__BROKERS: 'kafka-without-port' } }),
      (err: unknown) =>
        err instanceof ClusterGuardError &&
        /events\.brokers: expected host:port, not "kafka-without-port" \(from environment variable CG_EVENTS__BROKERS\)/.test(
          err.message,
        ),
    );
    await assert.rejects(
      loadAppConfig({ env: { CG_EVENTS__ENABLED: 'perhaps' } }),
      (err: unknown) => err instanceof ClusterGuardError && /events\.enabled/.test(err.message),
    );
  });
});
