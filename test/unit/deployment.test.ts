import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { parse as parseYaml } from 'yaml';
import { loadAppConfig } from '../../src/config/app-config.js';
import { repoRoot } from '../../src/process.js';

/**
 * The production deployment files: docker-compose.yml holds every service docs/operations.md
 * names, each with a health check and a restart policy; the agents have their own addresses and
 * volumes; the configuration files it mounts are valid clusterguard configuration; the
 * Dockerfile is multi-stage, non-root and ships the pre-built workflow bundle. No Docker
 * engine runs here: `docker compose config` validates the file when a compose client exists.
 */

interface ComposeService {
  image?: string;
  build?: unknown;
  restart?: string;
  healthcheck?: { test?: unknown };
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  networks?: Record<string, { ipv4_address?: string }> | string[];
  depends_on?: Record<string, { condition: string }>;
}

const file = (name: string) => readFile(path.join(repoRoot, name), 'utf8');

async function compose(): Promise<Record<string, ComposeService>> {
  const doc = parseYaml(await file('docker-compose.yml'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  return doc.services;
}

/** Service names from the table in docs/operations.md ("| `name` | …"). */
async function documentedServices(): Promise<string[]> {
  const text = await file('docs/operations.md');
  const section = text.split('## The services')[1]?.split('\n## ')[0] ?? '';
  return [...section.matchAll(/^\| `([a-z0-9-]+)` +\|/gm)].map((m) => m[1] ?? '');
}

describe('deployment: docker-compose.yml, Dockerfile, deploy/*.yaml', () => {
  test('every service the operations guide names exists, with a health check and a restart policy', async () => {
    const services = await compose();
    const named = await documentedServices();
    assert.ok(named.length >= 9, `the guide's table names the services: ${named.join(', ')}`);
    for (const name of named) {
      const s = services[name];
      assert.ok(s, `${name} is in docker-compose.yml`);
      // One-shot jobs: they exit when done.
      if (name === 'search-attributes' || name === 'temporal-schema') continue;
      assert.ok(s.healthcheck?.test, `${name} has a health check`);
      assert.ok(s.restart && s.restart !== 'no', `${name} restarts`);
    }
    assert.deepEqual(
      Object.keys(services).filter((n) => !named.includes(n)),
      [],
      'no service the guide leaves out',
    );
  });

  test('Temporal runs on PostgreSQL; the agents have their own addresses and volumes', async () => {
    const services = await compose();
    // The current images, and the server config the native production start reads too.
    assert.match(services.temporal?.image ?? '', /^temporalio\/server:1\.29\./);
    assert.match(services['temporal-schema']?.image ?? '', /^temporalio\/admin-tools:1\.29\./);
    assert.doesNotMatch(await file('docker-compose.yml'), /auto-setup/);
    assert.equal(services.temporal?.environment?.POSTGRES_SEEDS, 'postgresql');
    assert.ok(
      services.temporal?.volumes?.includes('./deploy/temporal:/etc/clusterguard/temporal:ro'),
    );
    assert.match(await file('deploy/temporal/production.yaml'), /requireClientAuth: true/);
    const native = await file('src/production/stack.ts');
    for (const f of ['orchestrator.yaml', 'agent.yaml']) {
      assert.ok(native.includes(`'${f}'`), `the native production start reads deploy/${f}`);
    }
    const orchestrators = Object.keys(services).filter((n) => n.startsWith('orchestrator-'));
    assert.equal(orchestrators.length, 2, 'two orchestrators');
    const agents = Object.entries(services).filter(([n]) => n.startsWith('agent-'));
    assert.equal(agents.length, 3);
    const addresses = agents.map(([, s]) => s.environment?.CG_NODE__ADDRESS);
    assert.equal(new Set(addresses).size, 3);
    for (const [name, s] of agents) {
      const nets = s.networks as Record<string, { ipv4_address?: string }>;
      assert.equal(nets.clusterguard?.ipv4_address, s.environment?.CG_NODE__ADDRESS, name);
      assert.ok(
        s.volumes?.some((v) => v.startsWith(`${name}-data:`)),
        `${name} has its own volume`,
      );
      assert.equal(s.depends_on?.temporal?.condition, 'service_healthy');
    }
    const sa = services['search-attributes']?.command?.join(' ') ?? '';
    for (const attr of ['ClusterId=Keyword', 'Runbook=Keyword', 'Nodes=KeywordList']) {
      assert.ok(sa.includes(attr), `registers ${attr}`);
    }
  });

  test("the Web UI reads the native start's configuration file, its variables all set", async () => {
    const ui = (await compose())['temporal-ui'];
    const mount = ui?.volumes?.find((v) => v.startsWith('./deploy/temporal-ui:'));
    assert.ok(mount, 'deploy/temporal-ui is mounted');
    const [, target] = mount.split(':');
    // ui-server reads <root>/<config>/<env>.yaml: the same file and environment as natively.
    const argv = ui?.entrypoint ?? [];
    const flag = (name: string) => argv[argv.indexOf(name) + 1];
    assert.equal(path.posix.join(flag('--root') ?? '', flag('--config') ?? ''), target);
    assert.equal(flag('--env'), 'production');
    assert.equal(argv.at(-1), 'start');
    const native = await file('src/production/ui-server.ts');
    assert.match(native, /'--config', 'deploy\/temporal-ui', '--env', 'production', 'start'/);
    const template = await file('deploy/temporal-ui/production.yaml');
    const required = [...template.matchAll(/\{\{ env "(\w+)" (\| default [^}]*)?\}\}/g)]
      .filter((m) => !m[2])
      .map((m) => m[1] ?? '');
    assert.ok(required.includes('TEMPORAL_ADDRESS'), required.join(', '));
    for (const name of required) {
      assert.ok(ui?.environment?.[name], `temporal-ui sets ${name}, which the file reads`);
    }
    // The port the service publishes and checks is the one the file is told to listen on.
    assert.equal(ui?.environment?.TEMPORAL_UI_PORT, '8080');
    assert.equal(ui?.environment?.TEMPORAL_UI_HOST, '0.0.0.0');
  });

  test('the mounted configuration files are valid clusterguard configuration', async () => {
    const agent = await loadAppConfig({
      file: path.join(repoRoot, 'deploy/agent.yaml'),
      env: { CG_NODE__ADDRESS: '172.28.0.11' },
      required: true,
    });
    assert.equal(agent.temporal.address, 'temporal:7233');
    assert.equal(agent.agent.tokenFile, '/run/secrets/cluster_token');
    const orchestrator = await loadAppConfig({
      file: path.join(repoRoot, 'deploy/orchestrator.yaml'),
      env: {},
      required: true,
    });
    assert.deepEqual(orchestrator.events.brokers, ['kafka:9092']);
    for (const c of [agent, orchestrator]) {
      assert.deepEqual(c.temporal.tls, {
        caFile: '/run/secrets/ca.pem',
        certFile: '/run/secrets/client.pem',
        keyFile: '/run/secrets/client.key',
      });
      assert.equal(c.metrics.port, 9464);
    }
    assert.equal(agent.agent.tls?.requireClientCert, true);
  });

  test('the Dockerfile: multi-stage, production dependencies, the pre-built bundle, not root', async () => {
    const text = await file('Dockerfile');
    assert.equal(text.match(/^FROM /gm)?.length, 2);
    assert.match(text, /npm ci --omit=dev/);
    assert.match(text, /npm run build:bundle/);
    assert.match(text, /CG_WORKFLOW_BUNDLE=\/app\/dist\/workflow-bundle\.js/);
    const users = [...text.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(users, ['clusterguard']);
  });

  test('docker compose config accepts the file (when a compose client is installed)', async (t) => {
    const tries: [string, string[]][] = [
      ['docker', ['compose', 'config', '--quiet']],
      ['docker-compose', ['config', '--quiet']],
    ];
    for (const [cmd, args] of tries) {
      const r = await execa(cmd, args, { cwd: repoRoot, reject: false, timeout: 30_000 });
      if (r.exitCode === 0) return;
      // Not installed, or `docker` without its compose plugin: try the next client.
      if (/unknown command|unknown flag|not found|ENOENT/i.test(`${r.stderr}${r.shortMessage}`))
        continue;
      assert.fail(`${cmd} ${args.join(' ')} refused docker-compose.yml: ${r.stderr}`);
    }
    t.skip('no docker compose client on this machine; the structure is checked above');
  });
});
