import type { Command } from 'commander';
import { defined, done, example, exitCodes, list, print, whole, startFlags } from '../common.js';
import { clientApi, startCommand, withClient, yamlApi } from '../lazy.js';

/** `guardian …`: the cluster guardian (clusterGuardian, cg/<cluster>/guardian). */
export function guardianCommands(program: Command): void {
  const guardian = program
    .command('guardian')
    .description('the cluster guardian (clusterGuardian, cg/<cluster>/guardian)');
  example(
    startFlags(
      guardian
        .command('start')
        .description('start the guardian of a cluster')
        .option('--cluster <id>', 'cluster id')
        .requiredOption('--master <address>', 'a member, normally the master')
        .option('--desired <a,b,…>', 'the desired members (or set them later)', list)
        .option('--controller-url <url>', "poll the appliance controller's cluster endpoint")
        .option('--interval <seconds>', 'how often to compare (default 60)', whole('seconds', 1))
        .option('--dry-run', 'children run as dry runs'),
    ),
    'clusterguard guardian start --cluster dev --master 127.0.0.11 --desired 127.0.0.11,127.0.0.12,127.0.0.13',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startCommand(this, 'clusterGuardian', {
        clusterId: o.cluster,
        master: o.master,
        desired: o.desired,
        source: o.controllerUrl ? { controllerUrl: o.controllerUrl as string } : undefined,
        intervalSeconds: o.interval,
        dryRun: o.dryRun,
      }),
    );
  });

  const guardianCommand = (name: string, description: string, line: string) =>
    example(
      guardian.command(name).description(description).option('--cluster <id>', 'cluster id'),
      line,
    );
  guardianCommand(
    'status',
    'the query state: desired and actual membership, last check, running child',
    'clusterguard guardian status --cluster dev',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await withClient(this, async (client) => {
        const { guardianState } = await clientApi();
        const YAML = await yamlApi();
        const state = await guardianState(client, o.cluster as string);
        print(state, () => YAML.stringify(state).trimEnd());
        return exitCodes.ok;
      }),
    );
  });
  guardianCommand(
    'pause',
    'signal pause',
    'clusterguard guardian pause --cluster dev --reason maintenance',
  )
    .option('--reason <text>', 'shown in its state')
    .action(async function (this: Command) {
      const o = this.opts();
      done(
        await withClient(this, async (client) => {
          const { pauseGuardian } = await clientApi();
          await pauseGuardian(client, o.cluster as string, o.reason as string | undefined);
          print(
            { clusterId: o.cluster as string, signal: 'pause' },
            () => `pause sent to the guardian`,
          );
          return exitCodes.ok;
        }),
      );
    });
  guardianCommand('resume', 'signal resume', 'clusterguard guardian resume --cluster dev').action(
    async function (this: Command) {
      const o = this.opts();
      done(
        await withClient(this, async (client) => {
          const { resumeGuardian } = await clientApi();
          await resumeGuardian(client, o.cluster as string);
          print(
            { clusterId: o.cluster as string, signal: 'resume' },
            () => `resume sent to the guardian`,
          );
          return exitCodes.ok;
        }),
      );
    },
  );
  guardianCommand(
    'set-membership',
    'update setMembership: the desired members',
    'clusterguard guardian set-membership --cluster dev --nodes 127.0.0.11,127.0.0.12,127.0.0.14',
  )
    .requiredOption('--nodes <a,b,…>', 'the desired members', list)
    .option('--master <address>', 'which of them is the master (default the first)')
    .option('--reason <text>', 'why, for its state and history')
    .action(async function (this: Command) {
      const o = this.opts();
      const { checked, setGuardianMembership, setMembershipSchema } = await clientApi();
      const arg = defined({ nodes: o.nodes, master: o.master, reason: o.reason });
      checked(setMembershipSchema, arg, 'setMembership');
      done(
        await withClient(this, async (client) => {
          const answer = await setGuardianMembership(client, o.cluster as string, arg as never);
          print({ clusterId: o.cluster as string, update: 'setMembership', answer }, () => answer);
          return exitCodes.ok;
        }),
      );
    });
}
