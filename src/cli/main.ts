/**
 * `clusterguard`: the operators' CLI over the service API (src/client). Every command validates its input
 * before connecting, prints a table or (`-o json|yaml|jsonl`) data on stdout, and exits with a
 * code from `exitCodes` (docs/cli.md). Defining the commands loads no Temporal client and no
 * schema (src/cli/lazy.ts), so `--help`, `--version` and `completion` start fast.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { bundleCommands } from './commands/bundles.js';
import { guardianCommands } from './commands/guardian.js';
import { runbookCommands } from './commands/runbooks.js';
import { scheduleCommands } from './commands/schedules.js';
import { steerCommands } from './commands/steer.js';
import { completionCommand } from './completion.js';
import {
  CliExit,
  allOpts,
  cli,
  exitCodes,
  format,
  outputFormats,
  paint,
  seconds,
  setOutput,
  type Globals,
} from './common.js';

export { exitCodes } from './common.js';

/** The package's version: package.json is two folders up from src/cli and from dist/cli. */
function version(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `--cluster` left out: the default cluster of the environment or the config file. */
async function defaultClusterHook(action: Command): Promise<void> {
  if (!action.options.some((o) => o.long === '--cluster')) return;
  if (allOpts(action).cluster !== undefined) return;
  const { defaultCluster } = await import('./settings.js');
  const cluster = defaultCluster(action.optsWithGlobals<Globals>());
  if (cluster === undefined) {
    action.error(
      "error: required option '--cluster <id>' not specified (or set a default cluster: " +
        '`cluster: <id>` in the CLI config file, or CLUSTERGUARD_CLUSTER)',
    );
  }
  action.setOptionValueWithSource('cluster', cluster, 'config');
}

export function buildProgram(): Command {
  const program = new Command('clusterguard');
  program
    .description('Start, follow and steer clusterguard runbooks on a Temporal server.')
    .version(version(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addOption(
      new Option('-o, --output <format>', 'output: a table, or data on stdout (errors too)')
        .choices(outputFormats)
        .default('table'),
    )
    .option('--json', 'the same as -o json')
    .option('--no-color', 'no colour (also: NO_COLOR set, or stdout not a terminal)')
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
    .option(
      '--connect-timeout <seconds>',
      'how long reaching the server may take (default 1.5)',
      seconds,
    )
    .option(
      '--ui-url <url>',
      'the Web UI, for links [env CLUSTERGUARD_UI_URL, default http://<address host>:<port+1000>]',
    )
    .hook('preAction', async (_this, action) => {
      await setOutput(action.optsWithGlobals<Globals>());
      await defaultClusterHook(action);
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok · 1 runbook failed/aborted · 2 bad input or usage (nothing sent) ·
3 cannot connect · 4 not found · 5 refused (update rejected, cluster busy) ·
6 parked, waiting for an operator · 7 --timeout passed (the runbook goes on) · 70 internal error.

Example:
  $ clusterguard --address temporal.example:7233 ping --cluster dev --nodes 10.0.0.1,10.0.0.2 --wait
`,
    );

  const { backup } = runbookCommands(program);
  scheduleCommands(backup);
  steerCommands(program);
  guardianCommands(program);
  bundleCommands(program);
  completionCommand(program);
  return program;
}

/** The exit code, type and message of an error; the client's errors are told apart lazily. */
async function classifyError(err: unknown) {
  if (err instanceof CliExit) {
    return { code: err.code, type: err.type ?? 'Error', message: err.message };
  }
  if (err instanceof CommanderError) {
    return { code: exitCodes.usage, type: 'Usage', message: err.message };
  }
  return (await import('./run.js')).classify(err);
}

export async function main(argv: string[] = process.argv): Promise<number> {
  // Errors before the options are read (a bad -o) still honour --json.
  cli.json = argv.includes('--json');
  cli.output = cli.json ? 'json' : 'table';
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
    const c = await classifyError(err);
    // Commander printed its own usage message already.
    if (cli.json) {
      console.log(
        format({ error: { type: c.type, message: c.message, exitCode: c.code } }, () => ''),
      );
    } else if (!(err instanceof CommanderError)) {
      const colour = cli.color && process.stderr.isTTY;
      console.error(`${colour ? paint('red', 'clusterguard:') : 'clusterguard:'} ${c.message}`);
    }
    return c.code;
  }
}
