import { Option, type Command } from 'commander';
import { ClusterGuardError } from '../client/index.js';
import type { ConnectionFlags } from './settings.js';

/** What every command shares: exit codes, output, option helpers. */

export const exitCodes = {
  /** Done; for --wait and watch: the runbook completed. */
  ok: 0,
  /** The runbook failed, was aborted, terminated, cancelled or timed out. */
  runbookFailed: 1,
  /** Bad input, flags or configuration: nothing was sent. */
  usage: 2,
  /** Temporal cannot be reached (address, TLS, API key). */
  cannotConnect: 3,
  /** No such workflow, schedule or namespace (or it does not answer `progress`). */
  notFound: 4,
  /** Refused: an update was rejected, or another runbook holds the cluster's workflow id. */
  refused: 5,
  /** Anything else: a bug; the message says what. */
  internal: 70,
} as const;

export class CliExit extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly type?: string,
  ) {
    super(message);
  }
}

export interface Globals extends ConnectionFlags {
  json?: boolean;
}

/** Set once the global options are read; `exitCode` by the action that ran. */
export const cli = { json: false, exitCode: 0 as number };

export function print(data: unknown, text: () => string): void {
  console.log(cli.json ? JSON.stringify(data, null, 2) : text());
}

export const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export const num = (v: string) => Number(v);
export const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The options given, without the ones left out (so schema defaults apply). */
export function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/**
 * A command's options merged with its ancestors' (its own win). `backup schedule create
 * --cluster dev --keep 7` hands `--cluster` and `--keep` to `backup`, which declares them too.
 */
export function allOpts(cmd: Command): Record<string, unknown> {
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.unshift(c);
  return Object.assign({}, ...chain.map((c) => defined(c.opts()))) as Record<string, unknown>;
}

/** Commander checks an ancestor's required options for subcommands too; so these check here. */
export function required(cmd: Command, o: Record<string, unknown>, flags: string[]): void {
  for (const flag of flags) {
    const key = flag.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
    if (o[key] === undefined) cmd.error(`error: required option '--${flag}' not specified`);
  }
}

export function extraInput(json: string | undefined): Record<string, unknown> {
  if (json === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw new ClusterGuardError('InvalidInput', `--input is not JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw new ClusterGuardError('InvalidInput', '--input must be a JSON object');
  }
  return v as Record<string, unknown>;
}

export function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

export function startFlags(cmd: Command): Command {
  return cmd
    .option('--input <json>', 'more input fields as a JSON object (the flags win)')
    .option('--wait', 'wait for the runbook to end; print its result; exit code by outcome')
    .option('--watch', 'show live progress until the runbook ends; exit code by outcome');
}

/** `--middleware`: some of `components` (the membership or the data runbooks' list). */
export function middlewareOption(components: readonly string[]): Option {
  return new Option('--middleware <list>', `some of ${components.join(',')}`).argParser(list);
}

export function stepFlags(cmd: Command): Command {
  return cmd
    .option('--step-attempts <n>', 'attempts of a step before it parks (1–100)', num)
    .option('--agent-timeout <seconds>', 'when a silent node shows as unreachable', num);
}

export const done = (code: number): void => {
  cli.exitCode = code;
};
