/**
 * `clusterguard`: the operators' CLI over the service API (src/client). Every command validates its input
 * before connecting, prints text or (`--json`) JSON on stdout, and exits with a code from
 * `exitCodes` (docs/cli.md).
 */
import { Command, CommanderError, Option } from 'commander';
import { bundleCommands } from './commands/bundles.js';
import { guardianCommands } from './commands/guardian.js';
import { runbookCommands } from './commands/runbooks.js';
import { scheduleCommands } from './commands/schedules.js';
import { steerCommands } from './commands/steer.js';
import { cli, exitCodes, num, type Globals } from './common.js';
import { classify } from './run.js';

export { exitCodes } from './common.js';
export { classify } from './run.js';

export function buildProgram(): Command {
  const program = new Command('clusterguard');
  program
    .description('Start, follow and steer clusterguard runbooks on a Temporal server.')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .option('--json', 'machine-readable JSON on stdout (errors too)')
    .option(
      '--address <host:port>',
      'Temporal frontend [env TEMPORAL_ADDRESS, default 127.0.0.1:7233]',
    )
    .option('--namespace <name>', 'Temporal namespace [env TEMPORAL_NAMESPACE, default default]')
    .option(
      '--task-queue <name>',
      "the orchestrator's task queue [env CLUSTERGUARD_TASK_QUEUE, default clusterguard]",
    )
    .option(
      '--config <file>',
      'YAML config file [env CLUSTERGUARD_CONFIG, default ~/.config/clusterguard/cli.yaml]',
    )
    .option(
      '--profile <name>',
      "a profile of the temporal CLI's config file, under flags and env [env TEMPORAL_PROFILE]",
    )
    .option(
      '--config-file <file>',
      "the temporal CLI's TOML config file; alone, its default profile [env " +
        'TEMPORAL_CONFIG_FILE; with --profile, default ~/.config/temporalio/temporal.toml]',
    )
    .addOption(new Option('--tls', 'use TLS [env TEMPORAL_TLS]'))
    .addOption(new Option('--no-tls', 'do not use TLS even when other TLS settings are given'))
    .option('--tls-cert <file>', 'client certificate [env TEMPORAL_TLS_CERT]')
    .option('--tls-key <file>', 'client key [env TEMPORAL_TLS_KEY]')
    .option('--tls-ca <file>', 'server CA certificate [env TEMPORAL_TLS_CA]')
    .option('--tls-server-name <name>', 'server name to verify [env TEMPORAL_TLS_SERVER_NAME]')
    .option('--api-key <key>', 'API key, implies TLS [env TEMPORAL_API_KEY]')
    .option('--connect-timeout <seconds>', 'give up connecting after this long (default 10)', num)
    .hook('preAction', (_this, action) => {
      cli.json = Boolean(action.optsWithGlobals<Globals>().json);
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok · 1 runbook failed/aborted · 2 bad input or usage (nothing sent) ·
3 cannot connect · 4 not found · 5 refused (update rejected, cluster busy) · 70 internal error.

Example:
  $ clusterguard --address temporal.example:7233 ping --cluster dev --nodes 10.0.0.1,10.0.0.2 --wait
`,
    );

  const { backup } = runbookCommands(program);
  scheduleCommands(backup);
  steerCommands(program);
  guardianCommands(program);
  bundleCommands(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  cli.json = argv.includes('--json');
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return cli.exitCode;
  } catch (err) {
    if (
      err instanceof CommanderError &&
      (err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.help' ||
        err.code === 'commander.version')
    ) {
      return exitCodes.ok;
    }
    const c = classify(err);
    // Commander printed its own usage message already.
    if (cli.json) {
      console.log(
        JSON.stringify({ error: { type: c.type, message: c.message, exitCode: c.code } }, null, 2),
      );
    } else if (!(err instanceof CommanderError)) {
      console.error(`clusterguard: ${c.message}`);
    }
    return c.code;
  }
}
