import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultCluster, resolveConnection } from '../../src/cli/settings.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';

describe('CLI connection settings', () => {
  let dir: string;
  let config: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-cli-settings-'));
    config = path.join(dir, 'cli.yaml');
    await writeFile(
      config,
      'address: file:7233\nnamespace: file-ns\ntaskQueue: file-queue\n' +
        'tls: { cert: certs/client.pem, key: certs/client.key, serverName: temporal.internal }\n',
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('defaults: a local dev server, no TLS, the clusterguard queue', () => {
    const r = resolveConnection({}, { XDG_CONFIG_HOME: dir });
    assert.deepEqual(r.connect, {
      address: '127.0.0.1:7233',
      namespace: 'default',
      connectTimeoutMs: 1_500,
    });
    assert.equal(r.taskQueue, 'clusterguard');
    // The dev server's Web UI: the frontend's port + 1000.
    assert.equal(r.uiUrl, 'http://127.0.0.1:8233');
    assert.equal(
      resolveConnection({ address: 'temporal.lan:7300' }, {}).uiUrl,
      'http://temporal.lan:8300',
    );
  });

  test('a default cluster and Web UI from the config file; the environment first', async () => {
    const file = path.join(dir, 'with-cluster.yaml');
    await writeFile(file, 'cluster: plant-7\nuiUrl: https://ui.example/\n');
    assert.equal(defaultCluster({ config: file }, {}), 'plant-7');
    assert.equal(defaultCluster({ config: file }, { CLUSTERGUARD_CLUSTER: 'env-c' }), 'env-c');
    assert.equal(defaultCluster({}, { XDG_CONFIG_HOME: dir }), undefined);
    assert.equal(resolveConnection({ config: file }, {}).uiUrl, 'https://ui.example');
    assert.equal(
      resolveConnection(
        { config: file, uiUrl: 'http://flag:1' },
        { CLUSTERGUARD_UI_URL: 'http://env:2' },
      ).uiUrl,
      'http://flag:1',
    );
  });

  test('flags over environment over config file; file paths are relative to the file', () => {
    const env = { TEMPORAL_ADDRESS: 'env:7233', TEMPORAL_TLS_KEY: '/env/key.pem' };
    const fromFile = resolveConnection({ config }, {});
    assert.equal(fromFile.connect.address, 'file:7233');
    assert.equal(fromFile.connect.namespace, 'file-ns');
    assert.equal(fromFile.taskQueue, 'file-queue');
    assert.deepEqual(fromFile.connect.tls, {
      cert: path.join(dir, 'certs/client.pem'),
      key: path.join(dir, 'certs/client.key'),
      serverName: 'temporal.internal',
    });

    const fromEnv = resolveConnection({ config }, env);
    assert.equal(fromEnv.connect.address, 'env:7233');
    assert.equal((fromEnv.connect.tls as { key: string }).key, '/env/key.pem');

    const fromFlags = resolveConnection(
      { config, address: 'flag:7233', taskQueue: 'q', tls: false },
      env,
    );
    assert.equal(fromFlags.connect.address, 'flag:7233');
    assert.equal(fromFlags.taskQueue, 'q');
    assert.equal(fromFlags.connect.tls, false);
  });

  test('an API key turns TLS on unless it is turned off; TEMPORAL_TLS must be a boolean', () => {
    const r = resolveConnection({}, { XDG_CONFIG_HOME: dir, TEMPORAL_API_KEY: 'k' });
    assert.equal(r.connect.apiKey, 'k');
    assert.equal(r.connect.tls, undefined); // connect() turns TLS on for an API key
    assert.equal(
      resolveConnection({}, { XDG_CONFIG_HOME: dir, TEMPORAL_TLS: 'true' }).connect.tls,
      true,
    );
    assert.throws(
      () => resolveConnection({}, { XDG_CONFIG_HOME: dir, TEMPORAL_TLS: 'maybe' }),
      (err: unknown) => err instanceof ClusterGuardError && err.type === 'InvalidConfig',
    );
  });

  test('a bad or missing config file is refused with its path', async () => {
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'adress: typo:7233\n');
    assert.throws(
      () => resolveConnection({ config: bad }, {}),
      (err: unknown) =>
        err instanceof ClusterGuardError &&
        err.type === 'InvalidConfig' &&
        err.message.includes(bad) &&
        /adress/.test(err.message),
    );
    assert.throws(
      () => resolveConnection({ config: path.join(dir, 'none.yaml') }, {}),
      /cannot read the config file/,
    );
  });

  test("the key ring for encrypted payloads comes from the processes' variables or the file", () => {
    assert.equal(resolveConnection({}, {}).codec, undefined);
    assert.deepEqual(
      resolveConnection({}, { CG_CODEC__KEYS: 'k1=abc', CG_CODEC__CURRENT: 'k1' }).codec,
      { keys: 'k1=abc', current: 'k1' },
    );
    assert.deepEqual(resolveConnection({}, { CG_CODEC__KEY_FILE: '/etc/ring.yaml' }).codec, {
      keyFile: '/etc/ring.yaml',
    });
  });

  describe('profiles of the temporal CLI (--profile, --config-file)', () => {
    let toml: string;
    before(async () => {
      toml = path.join(dir, 'temporal.toml');
      // The shape `temporal config set` writes (test/unit/temporal-profile.test.ts runs it).
      await writeFile(
        toml,
        '[profile.prod]\naddress = "prod:7233"\nnamespace = "prod-ns"\napi_key = "prod-key"\n' +
          '[profile.prod.tls]\nclient_cert_path = "/p/client.pem"\nclient_key_path = "/p/client.key"\n' +
          'server_ca_cert_path = "/p/ca.pem"\nserver_name = "temporal.prod"\n' +
          '[profile.staging]\naddress = "staging:7233"\n' +
          '[profile.plain]\naddress = "plain:7233"\n[profile.plain.tls]\ndisabled = true\n' +
          '[profile.inline]\naddress = "inline:7233"\n' +
          '[profile.inline.grpc_meta]\nx-tenant = "plant-7"\n' +
          '[profile.inline.tls]\nserver_ca_cert_data = "-----BEGIN CERTIFICATE-----"\n' +
          '[profile.default]\naddress = "default-profile:7233"\n',
      );
    });

    test('flags over environment over profile over the clusterguard config file', () => {
      const fromProfile = resolveConnection({ config, profile: 'prod', configFile: toml }, {});
      assert.deepEqual(fromProfile.connect, {
        address: 'prod:7233',
        namespace: 'prod-ns',
        apiKey: 'prod-key',
        tls: {
          cert: '/p/client.pem',
          key: '/p/client.key',
          ca: '/p/ca.pem',
          serverName: 'temporal.prod',
        },
        connectTimeoutMs: 1_500,
      });
      assert.equal(fromProfile.taskQueue, 'file-queue'); // not a profile setting
      assert.deepEqual(fromProfile.profile, { name: 'prod', file: toml });

      const env = {
        TEMPORAL_PROFILE: 'prod',
        TEMPORAL_CONFIG_FILE: toml,
        TEMPORAL_NAMESPACE: 'env-ns',
        TEMPORAL_TLS_CA: '/env/ca.pem',
      };
      const fromEnv = resolveConnection({ config }, env);
      assert.equal(fromEnv.connect.address, 'prod:7233');
      assert.equal(fromEnv.connect.namespace, 'env-ns');
      assert.deepEqual(fromEnv.connect.tls, {
        cert: '/p/client.pem',
        key: '/p/client.key',
        ca: '/env/ca.pem',
        serverName: 'temporal.prod',
      });

      const fromFlags = resolveConnection(
        { config, profile: 'staging', address: 'flag:7233', apiKey: 'flag-key' },
        env,
      );
      assert.equal(fromFlags.connect.address, 'flag:7233'); // flag over the staging profile
      assert.equal(fromFlags.connect.apiKey, 'flag-key');
      assert.equal(fromFlags.connect.namespace, 'env-ns');
      // staging has no TLS: the clusterguard file's TLS applies, under the variable's CA.
      assert.deepEqual(fromFlags.connect.tls, {
        cert: path.join(dir, 'certs/client.pem'),
        key: path.join(dir, 'certs/client.key'),
        ca: '/env/ca.pem',
        serverName: 'temporal.internal',
      });
    });

    test('without --profile / --config-file (or their variables) no TOML file is read', async () => {
      const home = path.join(dir, 'home');
      await mkdir(path.join(home, '.config', 'temporalio'), { recursive: true });
      await writeFile(
        path.join(home, '.config', 'temporalio', 'temporal.toml'),
        '[profile.default]\naddress = "developer:7233"\n',
      );
      const env = { HOME: home, XDG_CONFIG_HOME: dir };
      assert.equal(resolveConnection({}, env).connect.address, '127.0.0.1:7233');
      assert.equal(resolveConnection({}, env).profile, undefined);
      // --profile alone reads the temporal CLI's default file; a file alone its default profile.
      assert.equal(
        resolveConnection({ profile: 'default' }, { HOME: home }).connect.address,
        'developer:7233',
      );
      assert.equal(
        resolveConnection({}, { TEMPORAL_CONFIG_FILE: toml }).connect.address,
        'default-profile:7233',
      );
    });

    test('disabled TLS, inline data, gRPC headers and a missing profile', () => {
      const plain = resolveConnection({ profile: 'plain', configFile: toml, apiKey: 'k' }, {});
      assert.equal(plain.connect.tls, false);
      // A flag's TLS file wins over the profile's `disabled = true`.
      assert.deepEqual(
        resolveConnection({ profile: 'plain', configFile: toml, tlsCa: '/f/ca.pem' }, {}).connect
          .tls,
        { ca: '/f/ca.pem' },
      );
      // Inline PEM and gRPC headers of a profile reach connect() as they are.
      const inline = resolveConnection({ profile: 'inline', configFile: toml }, {}).connect;
      assert.deepEqual(inline.tls, { caData: '-----BEGIN CERTIFICATE-----' });
      assert.deepEqual(inline.grpcMeta, { 'x-tenant': 'plant-7' });
      assert.deepEqual(
        resolveConnection({ profile: 'inline', configFile: toml, tlsCa: '/f/ca.pem' }, {}).connect
          .tls,
        { ca: '/f/ca.pem' },
      );
      assert.throws(
        () => resolveConnection({}, { TEMPORAL_PROFILE: 'nope', TEMPORAL_CONFIG_FILE: toml }),
        (err: unknown) =>
          err instanceof ClusterGuardError &&
          err.type === 'InvalidConfig' &&
          err.message.includes(toml) &&
          /no profile "nope"/.test(err.message),
      );
    });
  });
});
