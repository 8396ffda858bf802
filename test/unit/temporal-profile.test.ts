import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { loadAppConfig } from '../../src/config/app-config.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { repoRoot } from '../../src/process.js';
import { tlsFor } from '../../src/temporal/connection.js';
import { loadConnectionProfile } from '../../src/config/temporal-profile.js';

/**
 * `temporal.profile`: the profiles are written by the real `temporal config set` (the CLI the
 * operators use, offline), so the test reads the TOML that tool produces; without the binary
 * (no `npm run setup`) the same settings are written by hand.
 */
const temporalBin = path.join(repoRoot, '.tools', 'bin', 'temporal');

// [profile, property, value] as `temporal config set --profile … --prop … --value …` takes them.
type Prop = [string, string, string];

function tomlByHand(props: Prop[]): string {
  const tables = new Map<string, string[]>();
  for (const [profile, prop, value] of props) {
    const dot = prop.lastIndexOf('.');
    const table = dot < 0 ? `profile.${profile}` : `profile.${profile}.${prop.slice(0, dot)}`;
    const key = prop.slice(dot + 1);
    const v = value === 'true' || value === 'false' ? value : JSON.stringify(value);
    tables.set(table, [...(tables.get(table) ?? []), `${key} = ${v}`]);
  }
  return [...tables].map(([t, lines]) => `[${t}]\n${lines.join('\n')}\n`).join('\n');
}

async function writeProfiles(file: string, props: Prop[]): Promise<'temporal CLI' | 'by hand'> {
  if (!existsSync(temporalBin)) {
    await writeFile(file, tomlByHand(props));
    return 'by hand';
  }
  for (const [profile, prop, value] of props) {
    await execa(temporalBin, [
      'config',
      'set',
      '--config-file',
      file,
      '--profile',
      profile,
      '--prop',
      prop,
      '--value',
      value,
    ]);
  }
  return 'temporal CLI';
}

const isInvalidConfig = (pattern: RegExp) => (err: unknown) =>
  err instanceof ClusterGuardError && err.type === 'InvalidConfig' && pattern.test(err.message);

describe('connection profiles of the temporal CLI (temporal.profile)', () => {
  let dir: string;
  let toml: string;
  const pem = (name: string) =>
    `-----BEGIN ${name}-----\n${name.toLowerCase()}\n-----END ${name}-----\n`;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-profile-'));
    toml = path.join(dir, 'temporal.toml');
    for (const name of ['client.pem', 'client.key', 'ca.pem']) {
      await writeFile(path.join(dir, name), pem(name.toUpperCase()));
    }
    await writeProfiles(toml, [
      ['prod', 'address', 'temporal.prod.internal:7233'],
      ['prod', 'namespace', 'clusterguard-prod'],
      ['prod', 'api_key', 'prod-key'],
      ['prod', 'tls.client_cert_path', path.join(dir, 'client.pem')],
      ['prod', 'tls.client_key_path', path.join(dir, 'client.key')],
      ['prod', 'tls.server_ca_cert_path', path.join(dir, 'ca.pem')],
      ['prod', 'tls.server_name', 'temporal.internal'],
      ['prod', 'grpc_meta.x-tenant', 'appliance'],
      ['inline', 'namespace', 'inline-ns'],
      ['inline', 'tls.client_cert_data', pem('CERTIFICATE')],
      ['inline', 'tls.client_key_data', pem('PRIVATE KEY')],
      ['inline', 'tls.server_ca_cert_data', pem('CA')],
      ['off', 'api_key', 'plain-key'],
      ['off', 'tls.disabled', 'true'],
      ['default', 'address', 'from-default-profile:7233'],
    ]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a named profile gives address, namespace, API key, TLS files and headers', async () => {
    const config = await loadAppConfig({
      env: { CG_TEMPORAL__PROFILE: 'prod', CG_TEMPORAL__CONFIG_FILE: toml },
    });
    const t = config.temporal;
    assert.equal(t.address, 'temporal.prod.internal:7233');
    assert.equal(t.namespace, 'clusterguard-prod');
    assert.equal(t.apiKey, 'prod-key');
    assert.equal(t.taskQueue, 'clusterguard'); // not in a profile: the default
    assert.deepEqual(t.grpcMeta, { 'x-tenant': 'appliance' });
    assert.deepEqual(await tlsFor(t), {
      serverNameOverride: 'temporal.internal',
      serverRootCACertificate: Buffer.from(pem('CA.PEM')),
      clientCertPair: {
        crt: Buffer.from(pem('CLIENT.PEM')),
        key: Buffer.from(pem('CLIENT.KEY')),
      },
    });
  });

  test('inline PEM data (tls.*_data) becomes the TLS material as it is', async () => {
    const config = await loadAppConfig({
      env: { CG_TEMPORAL__PROFILE: 'inline', CG_TEMPORAL__CONFIG_FILE: toml },
    });
    assert.equal(config.temporal.namespace, 'inline-ns');
    assert.equal(config.temporal.address, '127.0.0.1:7233'); // the profile has none
    assert.deepEqual(await tlsFor(config.temporal), {
      serverRootCACertificate: Buffer.from(pem('CA')),
      clientCertPair: {
        crt: Buffer.from(pem('CERTIFICATE')),
        key: Buffer.from(pem('PRIVATE KEY')),
      },
    });
  });

  test('explicit clusterguard settings (YAML, CG_*) win over the profile', async () => {
    const yaml = path.join(dir, 'clusterguard.yaml');
    await writeFile(
      yaml,
      `temporal:\n  profile: prod\n  configFile: ${toml}\n  address: yaml:7233\n` +
        `  tls:\n    certFile: ${dir}/other.pem\n    keyFile: ${dir}/other.key\n`,
    );
    const config = await loadAppConfig({
      file: yaml,
      env: { CG_TEMPORAL__NAMESPACE: 'env-ns', CG_TEMPORAL__API_KEY: 'env-key' },
    });
    const t = config.temporal;
    assert.equal(t.address, 'yaml:7233');
    assert.equal(t.namespace, 'env-ns');
    assert.equal(t.apiKey, 'env-key');
    // The client certificate and key are replaced as a pair; the profile's CA and name stay.
    assert.deepEqual(t.tls, {
      certFile: `${dir}/other.pem`,
      keyFile: `${dir}/other.key`,
      caFile: path.join(dir, 'ca.pem'),
      serverName: 'temporal.internal',
    });
    // An operator that sets the default value explicitly still wins over the profile.
    const same = await loadAppConfig({
      env: {
        CG_TEMPORAL__PROFILE: 'prod',
        CG_TEMPORAL__CONFIG_FILE: toml,
        CG_TEMPORAL__ADDRESS: '127.0.0.1:7233',
      },
    });
    assert.equal(same.temporal.address, '127.0.0.1:7233');
  });

  test('tls false turns the profile TLS off, true keeps it; disabled in the profile means off', async () => {
    const env = { CG_TEMPORAL__PROFILE: 'prod', CG_TEMPORAL__CONFIG_FILE: toml };
    const off = await loadAppConfig({ env: { ...env, CG_TEMPORAL__TLS: 'false' } });
    assert.equal(await tlsFor(off.temporal), false);
    const on = await loadAppConfig({ env: { ...env, CG_TEMPORAL__TLS: 'true' } });
    assert.equal(typeof on.temporal.tls, 'object');
    const disabled = await loadAppConfig({
      env: { CG_TEMPORAL__PROFILE: 'off', CG_TEMPORAL__CONFIG_FILE: toml },
    });
    assert.equal(disabled.temporal.apiKey, 'plain-key');
    assert.equal(await tlsFor(disabled.temporal), false); // not turned on by the API key
  });

  test('no profile named: no TOML file is read, not even $TEMPORAL_CONFIG_FILE', async () => {
    const saved = process.env.TEMPORAL_CONFIG_FILE;
    process.env.TEMPORAL_CONFIG_FILE = toml; // its `default` profile says from-default-profile
    try {
      const config = await loadAppConfig({ env: {} });
      assert.equal(config.temporal.address, '127.0.0.1:7233');
      assert.equal(config.temporal.profile, undefined);
      // Named by clusterguard's config, the same variable locates the file.
      const named = await loadAppConfig({ env: { CG_TEMPORAL__PROFILE: 'default' } });
      assert.equal(named.temporal.address, 'from-default-profile:7233');
    } finally {
      if (saved === undefined) delete process.env.TEMPORAL_CONFIG_FILE;
      else process.env.TEMPORAL_CONFIG_FILE = saved;
    }
    // A file alone selects its `default` profile.
    const fileOnly = await loadAppConfig({ env: { CG_TEMPORAL__CONFIG_FILE: toml } });
    assert.equal(fileOnly.temporal.address, 'from-default-profile:7233');
  });

  test('a missing profile or file is InvalidConfig naming the file and the profile', async () => {
    await assert.rejects(
      loadAppConfig({ env: { CG_TEMPORAL__PROFILE: 'staging', CG_TEMPORAL__CONFIG_FILE: toml } }),
      isInvalidConfig(
        new RegExp(
          `temporal\\.profile: the Temporal config file ${toml} \\(profile "staging"\\): there is ` +
            'no profile "staging" \\(the file has [^)]*"prod".*' +
            'CG_TEMPORAL__PROFILE',
        ),
      ),
    );
    const missing = path.join(dir, 'nowhere.toml');
    await assert.rejects(
      loadAppConfig({ env: { CG_TEMPORAL__PROFILE: 'prod', CG_TEMPORAL__CONFIG_FILE: missing } }),
      isInvalidConfig(
        new RegExp(`cannot read the Temporal config file ${missing} \\(profile "prod"\\)`),
      ),
    );
  });

  test('an invalid TOML file or profile is InvalidConfig naming the file', async () => {
    const broken = path.join(dir, 'broken.toml');
    await writeFile(broken, '[profile.prod\naddress = "x:7233"\n');
    await assert.rejects(
      loadAppConfig({ env: { CG_TEMPORAL__PROFILE: 'prod', CG_TEMPORAL__CONFIG_FILE: broken } }),
      isInvalidConfig(
        new RegExp(`the Temporal config file ${broken} \\(profile "prod"\\) is not valid`),
      ),
    );
    const typed = path.join(dir, 'typed.toml');
    await writeFile(typed, '[profile.prod]\naddress = 7233\n');
    assert.throws(
      () => loadConnectionProfile({ profile: 'prod', configFile: typed }),
      isInvalidConfig(/is not valid: address: /),
    );
    const both = path.join(dir, 'both.toml');
    await writeFile(both, '[profile.prod.tls]\nclient_cert_path = "a"\nclient_cert_data = "b"\n');
    assert.throws(
      () => loadConnectionProfile({ profile: 'prod', configFile: both }),
      isInvalidConfig(/Cannot specify both client_cert_path and client_cert_data/),
    );
    const empty = path.join(dir, 'empty.toml');
    await writeFile(empty, '');
    assert.throws(
      () => loadConnectionProfile({ profile: 'prod', configFile: empty }),
      isInvalidConfig(/no profile "prod" \(the file has no profiles\)/),
    );
  });
});
