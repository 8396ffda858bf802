import assert from 'node:assert/strict';
import { execa } from 'execa';
import http2 from 'node:http2';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { repoRoot } from '../../src/process.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { cliEnv, parseJson, runCli, type CliRun } from '../helpers/cli.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * The operator's surface of `clusterguard` (docs/cli.md), through the real binary
 * (bin/clusterguard.mjs, compiled into dist/cli first) against the run's Temporal dev server,
 * a real orchestrator on a task queue of its own and a real agent on 127.0.0.203. 127.0.0.202
 * holds servers that are not Temporal (an HTTP/2 server that answers 404, a TCP server that
 * never answers); nothing listens on 127.0.0.201.
 */
const agent = '127.0.0.203';
const nothing = '127.0.0.201';
const impostors = '127.0.0.202';
const suffix = String(process.pid);
const stack = /\n\s+at /;

describe(
  'clusterguard CLI: start-up, connection failures, output, waiting',
  { concurrency: true },
  () => {
    let orchestrator: TestOrchestrator;
    let cluster: TestCluster;
    let client: Client;
    let dir: string;
    let env: Record<string, string>;
    let h2: http2.Http2Server;
    let silent: net.Server;
    const ports = { h2: 0, silent: 0 };
    const workflows = new Set<string>();

    const cli = (args: string[], extra: Record<string, string> = {}) =>
      runCli(args, { ...env, ...extra });
    const compiled = (r: CliRun) =>
      assert.doesNotMatch(r.stderr, /running from the TypeScript sources/, 'the compiled CLI ran');

    before(async () => {
      // What setup does: the compiled CLI, built when its sources changed.
      await execa(process.execPath, [path.join(repoRoot, 'scripts', 'build-cli.mjs')]);
      [orchestrator, cluster] = await Promise.all([
        startTestOrchestrator(),
        startTestCluster([agent]),
      ]);
      client = orchestrator.client;
      dir = await mkdtemp(path.join(os.tmpdir(), 'cg-cli-surface-'));
      h2 = http2.createServer((_req, res) => {
        res.writeHead(404);
        res.end('not here');
      });
      silent = net.createServer(() => undefined);
      await Promise.all([
        new Promise<void>((r) => h2.listen(0, impostors, r)),
        new Promise<void>((r) => silent.listen(0, impostors, r)),
      ]);
      ports.h2 = (h2.address() as net.AddressInfo).port;
      ports.silent = (silent.address() as net.AddressInfo).port;
      env = cliEnv(dir, orchestrator.taskQueue);
    });

    after(async () => {
      for (const id of workflows) {
        await client.workflow
          .getHandle(id)
          .terminate('test cleanup')
          .catch(() => undefined);
      }
      h2?.close();
      silent?.close();
      await orchestrator?.close();
      await cluster?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('the compiled CLI: --help, --version, and completion scripts made from its commands', async () => {
      const [help, version, bash, zsh, fish, badShell] = await Promise.all([
        cli(['--help']),
        cli(['--version']),
        cli(['completion', 'bash']),
        cli(['completion', 'zsh']),
        cli(['completion', 'fish']),
        cli(['completion', 'tcsh']),
      ]);
      for (const r of [help, version, bash, zsh, fish]) {
        assert.equal(r.exitCode, 0, r.stderr);
        compiled(r);
      }
      assert.match(
        help.stdout.replace(/\s+/g, ' '), // commander wraps to the terminal's width
        /-o, --output <format> .*\(choices: "table", "json", "yaml", "jsonl"/,
      );
      assert.match(help.stdout, /6 parked, waiting for an operator · 7 --timeout passed/);
      const pkg = (await import('../../package.json', { with: { type: 'json' } })).default;
      assert.equal(version.stdout.trim(), pkg.version);
      assert.equal(badShell.exitCode, 2);
      assert.match(badShell.stderr, /expected one of bash, zsh, fish/);

      // bash completes commands, nested subcommands, a command's options and -o's choices.
      const complete = async (words: string[]) => {
        const script = path.join(dir, 'completion.bash');
        await writeFile(script, bash.stdout);
        const r = await execa('bash', [
          '-c',
          `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); ` +
            `COMP_CWORD=${words.length - 1}; _clusterguard; echo "\${COMPREPLY[*]}"`,
        ]);
        return r.stdout.trim().split(/\s+/);
      };
      assert.deepEqual(await complete(['clusterguard', 'ba']), ['backup']);
      assert.deepEqual(await complete(['clusterguard', 'backup', 'sch']), ['schedule']);
      assert.ok((await complete(['clusterguard', 'backup', 'schedule', 'c'])).includes('create'));
      assert.deepEqual(
        await complete(['clusterguard', '--json', 'backup', 'schedule', 'create', '--cr']),
        ['--cron'],
      );
      assert.deepEqual(await complete(['clusterguard', 'watch', '--ti']), ['--timeout']);
      assert.deepEqual(await complete(['clusterguard', '-o', 'y']), ['yaml']);
      // zsh and fish are not installed here: their scripts carry the same table.
      for (const script of [zsh.stdout, fish.stdout]) {
        for (const word of ['result', 'history', 'cancel', 'schedule', '--cron', '--timeout']) {
          assert.ok(script.includes(word), `${word} in:\n${script.slice(0, 200)}`);
        }
      }
      assert.match(zsh.stdout, /^#compdef clusterguard/);
      assert.match(fish.stdout, /complete -c clusterguard -f -a '\(__clusterguard_complete\)'/);
    });

    test('bad flag values, config files and profiles: the flag and its form, the file and line', async () => {
      const yamlFile = path.join(dir, 'broken.yaml');
      const unknownKey = path.join(dir, 'unknown-key.yaml');
      const toml = path.join(dir, 'temporal.toml');
      await writeFile(yamlFile, 'address: 127.0.0.1:7233\nnamespace: [default\ncluster: dev\n');
      await writeFile(unknownKey, 'address: 127.0.0.1:7233\n\nadress: typo:7233\n');
      await writeFile(toml, '[profile.default]\naddress = "127.0.0.1:7233"\nnamespace = \n');
      const ping = ['ping', '--cluster', 'c', '--nodes', agent];
      const [hold, step, timeout, output, broken, unknown, profile] = await Promise.all([
        cli([...ping, '--hold-seconds', 'abc']),
        cli(['bootstrap', '--cluster', 'c', '--nodes', agent, '--step-attempts', '1.5']),
        cli(['watch', 'cg/c/ping/1', '--timeout', 'soon']),
        cli(['-o', 'xml', 'list', '--cluster', 'c']),
        cli(['--config', yamlFile, 'list', '--cluster', 'c']),
        cli(['--config', unknownKey, 'list', '--cluster', 'c']),
        cli(['--config-file', toml, 'list', '--cluster', 'c']),
      ]);
      for (const r of [hold, step, timeout, output, broken, unknown, profile]) {
        assert.equal(r.exitCode, 2, r.stdout + r.stderr);
        assert.doesNotMatch(r.stderr, /NaN|\n\s+at /);
      }
      assert.match(
        hold.stderr,
        /option '--hold-seconds <n>' argument 'abc' is invalid\. expected a whole number of seconds \(0–3600\)/,
      );
      assert.match(
        step.stderr,
        /'--step-attempts <n>' argument '1\.5' is invalid\. expected a whole number of attempts \(1–100\)/,
      );
      assert.match(
        timeout.stderr,
        /'--timeout <seconds>' argument 'soon' is invalid\. expected a number of seconds/,
      );
      assert.match(
        output.stderr,
        /'-o, --output <format>' argument 'xml' is invalid\. Allowed choices are table, json, yaml, jsonl/,
      );
      assert.match(
        broken.stderr,
        new RegExp(`the config file ${yamlFile} is not valid YAML at line 3: Flow sequence`),
      );
      assert.match(
        unknown.stderr,
        new RegExp(
          `the config file ${unknownKey} is invalid: line 3, \\(top level\\): Unrecognized key: "adress"`,
        ),
      );
      assert.match(
        profile.stderr,
        new RegExp(`${toml} \\(profile "default"\\) is not valid at line 3`),
      );
    });

    test('an unreachable server: exit 3 and the cause, never a stack trace', async () => {
      const status = (address: string, ...more: string[]) =>
        cli(['status', 'cg/c/ping/1', '--address', address, ...more]);
      const [refused, unknownHost, notTemporal, tlsToPlain, mute, json] = await Promise.all([
        status(`${nothing}:7233`),
        status('no-such-host.invalid:7233'),
        status(`${impostors}:${ports.h2}`),
        status(`${impostors}:${ports.h2}`, '--tls'),
        status(`${impostors}:${ports.silent}`, '--connect-timeout', '1'),
        status(`${nothing}:7233`, '-o', 'json'),
      ]);
      const causes: [CliRun, RegExp][] = [
        [refused, /connection refused/],
        [unknownHost, /unknown host no-such-host\.invalid/],
        [notTemporal, /answers HTTP\/2 but is not a Temporal frontend \(HTTP 404\)/],
        [
          tlsToPlain,
          /TLS error: wrong version number .*the server does not speak TLS: try --no-tls/,
        ],
        [mute, /no answer within 1 s: connected, but no HTTP\/2 \(gRPC\) answer/],
      ];
      for (const [r, cause] of causes) {
        assert.equal(r.exitCode, 3, r.stderr);
        assert.match(r.stderr, /^clusterguard: cannot connect to Temporal at /);
        assert.match(r.stderr, cause);
        assert.doesNotMatch(r.stderr, stack);
      }
      assert.equal(json.exitCode, 3);
      const e = parseJson<{ error: { type: string; message: string; exitCode: number } }>(
        json,
      ).error;
      assert.equal(e.type, 'CannotConnect');
      assert.equal(e.exitCode, 3);
    });

    test('ping with the default cluster: Web UI link, -o yaml and jsonl, status, result, history', async () => {
      const clusterId = `surface-${suffix}`;
      const config = path.join(dir, 'default-cluster.yaml');
      await writeFile(config, `cluster: ${clusterId}\nuiUrl: http://ui.example:8080/\n`);
      const wid = `cg/${clusterId}/ping/1`;
      workflows.add(wid);
      const withConfig = { CLUSTERGUARD_CONFIG: config };
      const started = await cli(
        ['ping', '--nodes', agent, '--workflow-id', wid, '--wait'],
        withConfig,
      );
      assert.equal(started.exitCode, 0, started.stdout + started.stderr);
      compiled(started);
      const { namespace } = testServer();
      assert.match(
        started.stderr,
        new RegExp(
          `Web UI: http://ui\\.example:8080/namespaces/${namespace}/workflows/cg%2F${clusterId}%2Fping%2F1/[0-9a-f-]+/history`,
        ),
      );
      // --wait showed the step's progress on stderr, then the outcome and result on stdout.
      assert.match(started.stderr, new RegExp(`\\[${agent.replace(/\./g, '\\.')}\\] completed`));
      assert.match(
        started.stdout,
        new RegExp(`pingCluster ${wid} \\(run [0-9a-f-]+\\): completed`),
      );

      const [status, result, history, list] = await Promise.all([
        cli(['status', wid, '-o', 'yaml']),
        cli(['result', wid, '--json']),
        cli(['history', wid, '-o', 'jsonl']),
        cli(['list', '-o', 'jsonl', '--no-color'], withConfig),
      ]);
      assert.equal(status.exitCode, 0, status.stderr);
      assert.match(status.stdout, /^workflowId: cg\/surface-\d+\/ping\/1$/m);
      assert.match(status.stdout, /^status: COMPLETED$/m);
      assert.equal(result.exitCode, 0, result.stderr);
      const outcome = parseJson<{ status: string; result: { nodes: { address: string }[] } }>(
        result,
      );
      assert.equal(outcome.status, 'COMPLETED');
      assert.deepEqual(
        outcome.result.nodes.map((n) => n.address),
        [agent],
      );
      assert.equal(history.exitCode, 0, history.stderr);
      const events = history.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { eventId: number; eventType: string; detail?: string });
      assert.equal(events[0]?.eventId, 1);
      assert.equal(events[0]?.eventType, 'WORKFLOW_EXECUTION_STARTED');
      assert.match(events[0]?.detail ?? '', /^pingCluster/);
      assert.equal(events.at(-1)?.eventType, 'WORKFLOW_EXECUTION_COMPLETED');
      assert.ok(events.some((e) => e.eventType === 'ACTIVITY_TASK_SCHEDULED'));
      assert.equal(list.exitCode, 0, list.stderr);
      const rows = list.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { workflowId: string });
      assert.ok(
        rows.some((r) => r.workflowId === wid),
        list.stdout,
      );

      const [noCluster] = await Promise.all([cli(['list'])]);
      assert.equal(noCluster.exitCode, 2);
      assert.match(
        noCluster.stderr,
        /required option '--cluster <id>' not specified \(or set a default cluster/,
      );
    });

    test('a parked runbook: --wait and watch return 6 with the parked step; status 6, then 1 after abort', async () => {
      const clusterId = `surface-park-${suffix}`;
      const wid = `cg/${clusterId}/membership`;
      workflows.add(wid);
      // The agent runs no ZooKeeper: creating the ensemble fails, and with one attempt it parks.
      const wait = await cli([
        'bootstrap',
        '--cluster',
        clusterId,
        '--nodes',
        agent,
        '--middleware',
        'zookeeper',
        '--step-attempts',
        '1',
        '--wait',
        '--timeout',
        '300',
      ]);
      assert.equal(wait.exitCode, 6, wait.stdout + wait.stderr);
      assert.match(wait.stderr, / parked/, 'the progress lines show the parked step');
      assert.match(
        wait.stderr,
        /waiting for an operator: \S+ on 127\.0\.0\.203 is parked: .*\(send retryStep, (skipNode, )?abort\)/,
      );
      assert.match(
        wait.stdout,
        /bootstrapCluster cg\/surface-park-\d+\/membership \(run [0-9a-f-]+\): running/,
      );

      const [status, watch] = await Promise.all([
        cli(['status', wid]),
        cli(['watch', wid, '-o', 'json']),
      ]);
      assert.equal(status.exitCode, 6, status.stdout + status.stderr);
      assert.match(status.stdout, /waiting for an operator: .* is parked/);
      assert.equal(watch.exitCode, 6, watch.stdout + watch.stderr);
      const last = JSON.parse(watch.stdout.trim().split('\n').at(-1) ?? '{}') as {
        outcome?: { status: string };
        waiting?: string;
      };
      assert.equal(last.outcome?.status, 'RUNNING');
      assert.match(last.waiting ?? '', /is parked/);

      const abort = await cli(['abort', wid, '--reason', 'surface test']);
      assert.equal(abort.exitCode, 0, abort.stdout + abort.stderr);
      const ended = await cli(['result', wid, '--timeout', '60']);
      assert.equal(ended.exitCode, 1, ended.stdout + ended.stderr);
      assert.match(ended.stdout, /: failed: Aborted: .*surface test/);
      const failed = await cli(['status', wid]);
      assert.equal(failed.exitCode, 1, failed.stdout + failed.stderr);
    });

    test('--timeout: watch and result return 7 while the runbook goes on; then cancel', async () => {
      const clusterId = `surface-slow-${suffix}`;
      const wid = `cg/${clusterId}/ping/slow`;
      workflows.add(wid);
      const started = await cli([
        'ping',
        '--cluster',
        clusterId,
        '--nodes',
        agent,
        '--hold-seconds',
        '600',
        '--workflow-id',
        wid,
        '--json',
      ]);
      assert.equal(started.exitCode, 0, started.stderr);
      const s = parseJson<{ workflowId: string; url: string }>(started);
      assert.equal(s.workflowId, wid);
      const [watch, result] = await Promise.all([
        cli(['watch', wid, '--timeout', '2']),
        cli(['result', wid, '--timeout', '2', '--json']),
      ]);
      assert.equal(watch.exitCode, 7, watch.stdout + watch.stderr);
      assert.match(watch.stderr, new RegExp(`--timeout passed; ${wid} goes on`));
      assert.equal(result.exitCode, 7, result.stdout + result.stderr);
      assert.equal(parseJson<{ status: string }>(result).status, 'RUNNING');

      const cancel = await cli(['cancel', wid]);
      assert.equal(cancel.exitCode, 0, cancel.stderr);
      assert.match(cancel.stdout, new RegExp(`cancellation requested for ${wid}`));
      const ended = await cli(['result', wid, '--timeout', '60']);
      assert.equal(ended.exitCode, 1, ended.stdout + ended.stderr);
      const history = await cli(['history', wid]);
      assert.match(history.stdout, /WORKFLOW_EXECUTION_CANCEL_REQUESTED/);
    });
  },
);
