import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  CliExit,
  defined,
  done,
  example,
  exitCodes,
  list,
  whole,
  print,
  startFlags,
  stepFlags,
} from '../common.js';
import { addBundleList } from '../bundle-list.js';
import { clientApi, startCommand, withClient, yamlApi } from '../lazy.js';
import { updateCommand } from './steer.js';

/** `approve` and `bundle …`: bundle rollouts (rolloutBundle). */
export function bundleCommands(program: Command): void {
  updateCommand(
    example(
      program
        .command('approve')
        .description('update approve: a bundle rollout waiting after its canary goes on')
        .argument('<workflow-id>')
        .option('--by <who>', 'who approved')
        .option('--reject <why>', 'refuse instead: the rollout rolls back'),
      'clusterguard approve cg/dev/bundle/com.example.app --by alice',
    ),
    'approve',
    async (client, wid, o) =>
      (await clientApi()).approveRollout(client, wid, defined({ by: o.by, reject: o.reject })),
  );

  const bundle = program.command('bundle').description('bundle rollouts (rolloutBundle)');
  addBundleList(bundle, print, done);
  example(
    bundle
      .command('status')
      .description("the query bundles of a cluster's rollout: phase and every node")
      .option('--cluster <id>', 'cluster id')
      .requiredOption('--name <symbolic-name>', "the bundle's symbolic name"),
    'clusterguard bundle status --cluster dev --name com.example.app',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await withClient(this, async (client) => {
        const { rolloutStatus } = await clientApi();
        const YAML = await yamlApi();
        const view = await rolloutStatus(client, o.cluster as string, o.name as string);
        print(view, () => YAML.stringify(view).trimEnd());
        return exitCodes.ok;
      }),
    );
  });

  example(
    bundle
      .command('push')
      .description(
        "POST /v1/bundles: upload a jar to a node's agent; prints its symbolic name, version, sha256",
      )
      .argument('<file>', 'the OSGi bundle (a jar with Bundle-SymbolicName and Bundle-Version)')
      .requiredOption('--agent <url>', "the agent's base URL, e.g. http://127.0.0.11:7700")
      .option(
        '--token-file <path>',
        'the cluster token (default $CLUSTERGUARD_TOKEN_FILE, else $CLUSTERGUARD_TOKEN)',
      )
      .option('--agent-ca <file>', "for https: the agents' CA [env CLUSTERGUARD_AGENT_CA]")
      .option(
        '--agent-cert <file>',
        'for mutual TLS: a client certificate [env CLUSTERGUARD_AGENT_CERT]',
      )
      .option('--agent-key <file>', 'for mutual TLS: its key [env CLUSTERGUARD_AGENT_KEY]'),
    'clusterguard bundle push app-1.2.0.jar --agent http://127.0.0.11:7700 --token-file .data/cluster-token',
  ).action(async function (this: Command, file: string) {
    const o = this.opts();
    const tokenFile = (o.tokenFile as string | undefined) ?? process.env.CLUSTERGUARD_TOKEN_FILE;
    const token = tokenFile
      ? (
          await readFile(tokenFile, 'utf8').catch((err: unknown) => {
            throw new CliExit(
              exitCodes.usage,
              `cannot read ${tokenFile}: ${(err as Error).message}`,
            );
          })
        ).trim()
      : process.env.CLUSTERGUARD_TOKEN;
    if (!token) {
      throw new CliExit(
        exitCodes.usage,
        'no cluster token: pass --token-file, or set CLUSTERGUARD_TOKEN_FILE or CLUSTERGUARD_TOKEN',
      );
    }
    const { loadClientTls } = await import('../../agent/tls.js');
    const { pushBundle } = await import('../../bundles/client.js');
    const tls = await loadClientTls({
      caFile: (o.agentCa as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_CA,
      certFile: (o.agentCert as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_CERT,
      keyFile: (o.agentKey as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_KEY,
    });
    const url = (o.agent as string).replace(/\/$/, '');
    const pushed = await pushBundle({ url, token, ...(tls ? { tls } : {}) }, file);
    print(
      pushed,
      () =>
        `${pushed.symbolicName} ${pushed.version} sha256 ${pushed.sha256} (${pushed.bytes} bytes, ${pushed.stored})\n` +
        `roll it out: clusterguard bundle rollout --cluster <id> --name ${pushed.symbolicName} --sha256 ${pushed.sha256} --master <node>`,
    );
    done(exitCodes.ok);
  });

  example(
    startFlags(
      stepFlags(
        bundle
          .command('rollout')
          .description('start rolloutBundle (cg/<cluster>/bundle/<name>): install node by node')
          .option('--cluster <id>', 'cluster id')
          .requiredOption('--name <symbolic-name>', "the bundle's symbolic name (from push)")
          .requiredOption('--sha256 <hex>', 'the artifact (from push)')
          .option('--nodes <a,b,…>', 'the nodes, in order (default: the members)', list)
          .option('--master <address>', 'a member whose cluster.json lists the members')
          .option('--source <address>', 'the agent the bundle was pushed to')
          .option(
            '--batch-size <n>',
            'nodes at once after the canary (default 1)',
            whole('nodes', 1),
          )
          .option(
            '--canary <n>',
            'nodes of a first batch; then wait for approve',
            whole('nodes', 1),
          )
          .option(
            '--max-failures <n>',
            'failed nodes tolerated before rolling back',
            whole('nodes'),
          )
          .option('--health-check <name>', "one of the agents' configured health checks")
          .option('--dry-run', 'plan only')
          .option('--allow-downgrade', "install over a higher version a node's framework runs"),
      ),
    ),
    'clusterguard bundle rollout --cluster dev --name com.example.app --sha256 <hex> --master 127.0.0.11 --canary 1 --watch',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startCommand(
        this,
        'rolloutBundle',
        {
          clusterId: o.cluster,
          sha256: o.sha256,
          nodes: o.nodes,
          master: o.master,
          source: o.source,
          batchSize: o.batchSize,
          canary: o.canary,
          maxFailures: o.maxFailures,
          healthCheck: o.healthCheck,
          allowDowngrade: o.allowDowngrade,
          dryRun: o.dryRun,
          stepAttempts: o.stepAttempts,
          agentTimeoutSeconds: o.agentTimeout,
        },
        { symbolicName: o.name as string },
      ),
    );
  });
}
