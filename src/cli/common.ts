import { InvalidArgumentError, Option, type Command } from 'commander';
import { ClusterGuardError } from '../contracts/errors.js';
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
  /** `--wait`, `watch`, `status`: the runbook is parked, waiting for an operator's update. */
  waiting: 6,
  /** `--timeout` passed while the runbook still runs (it goes on; nothing was changed). */
  timedOut: 7,
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

export const outputFormats = ['table', 'json', 'yaml', 'jsonl'] as const;
export type OutputFormat = (typeof outputFormats)[number];

export interface Globals extends ConnectionFlags {
  json?: boolean;
  output?: OutputFormat;
  color?: boolean;
}

/**
 * Set once the global options are read (`exitCode` by the action that ran): the output format
 * (`json` is true for every machine-readable one), colour, and YAML's printer once loaded.
 */
export const cli = {
  output: 'table' as OutputFormat,
  json: false,
  color: false,
  exitCode: 0 as number,
  yaml: undefined as ((data: unknown) => string) | undefined,
};

/** Reads `-o`, `--json`, `--no-color` and NO_COLOR; loads YAML's printer for `-o yaml`. */
export async function setOutput(g: Globals, tty = process.stdout.isTTY): Promise<void> {
  cli.output = g.json ? 'json' : (g.output ?? 'table');
  cli.json = cli.output !== 'table';
  cli.color = g.color !== false && !process.env.NO_COLOR && tty === true;
  if (cli.output === 'yaml') {
    const YAML = (await import('yaml')).default;
    cli.yaml = (data) => YAML.stringify(data).trimEnd();
  }
}

/** `data` in the chosen format: `text()` for a table, one line per item for `jsonl`. */
export function format(data: unknown, text: () => string): string {
  switch (cli.output) {
    case 'json':
      return JSON.stringify(data, null, 2);
    case 'jsonl':
      return (Array.isArray(data) ? data : [data]).map((d) => JSON.stringify(d)).join('\n');
    case 'yaml':
      return cli.yaml ? cli.yaml(data) : JSON.stringify(data, null, 2);
    default:
      return text();
  }
}

export function print(data: unknown, text: () => string): void {
  console.log(format(data, text));
}

const ansi = { red: 31, green: 32, yellow: 33, blue: 34, cyan: 36, dim: 2, bold: 1 } as const;

/** ANSI colour when `cli.color` (a terminal, no NO_COLOR, no --no-color); else the text. */
export function paint(colour: keyof typeof ansi, text: string): string {
  return cli.color ? `\u001b[${ansi[colour]}m${text}\u001b[0m` : text;
}

/** A step's or a run's status, coloured by what it means. */
export function paintStatus(status: string): string {
  const s = status.toLowerCase();
  if (/^(completed|ok|skipped)$/.test(s)) return paint('green', status);
  if (/^(failed|terminated|timed_out|canceled|cancelled)$/.test(s)) return paint('red', status);
  if (/^(parked|waiting|paused)$/.test(s)) return paint('yellow', status);
  if (s === 'running') return paint('cyan', status);
  return status;
}

export const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** An option parser: a whole number in [min, max], else an error naming the expected form. */
export function whole(what: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `${min}–${max}`;
      throw new InvalidArgumentError(`expected a whole number of ${what} (${range})`);
    }
    return n;
  };
}

/** An option parser: a number (decimals allowed) above 0, e.g. of seconds. */
export function decimal(what: string) {
  return (v: string): number => {
    const n = /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
    if (!(n > 0)) throw new InvalidArgumentError(`expected a number of ${what} above 0, e.g. 2.5`);
    return n;
  };
}

export const seconds = decimal('seconds');
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
    .option('--wait', 'wait for the end (progress on stderr); print the result; exit by outcome')
    .option('--watch', 'show live progress bars until the end; exit code by outcome')
    .option('--timeout <seconds>', 'with --wait/--watch: stop waiting after this long', seconds);
}

export const attempts = whole('attempts', 1, 100);
export const agentTimeout = whole('seconds', 1, 3600);

/** `--middleware`: some of `components` (the membership or the data runbooks' list). */
export function middlewareOption(components: readonly string[]): Option {
  return new Option('--middleware <list>', `some of ${components.join(',')}`).argParser(list);
}

export function stepFlags(cmd: Command): Command {
  return cmd
    .option('--step-attempts <n>', 'attempts of a step before it parks (1–100)', attempts)
    .option('--agent-timeout <seconds>', 'when a silent node shows as unreachable', agentTimeout);
}

export const done = (code: number): void => {
  cli.exitCode = code;
};
