import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveConnection } from '../../src/cli/settings.js';
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
      connectTimeoutMs: 10_000,
    });
    assert.equal(r.taskQueue, 'clusterguard');
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
});
