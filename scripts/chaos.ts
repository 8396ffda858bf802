/**
 * `npm run chaos -- --kills 100 --minutes 60 --seed 1234`: a randomized fault campaign on
 * loopback nodes (README "Chaos campaign"). Prints progress lines and a summary table; exits 1
 * when anything was lost, a runbook failed or hung, or the cluster is not whole at the end.
 */
import { parseArgs } from 'node:util';
import { runCampaign, summary } from '../test/chaos/campaign.js';
import { randomSeed } from '../test/chaos/rng.js';

const usage =
  'usage: npm run chaos -- [--kills N] [--minutes M] [--seed S] [--nodes a,b,c,d] [--runbook-minutes R] [--no-supervisor]';

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number, not ${JSON.stringify(text)}\n${usage}`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    kills: { type: 'string' },
    minutes: { type: 'string' },
    seed: { type: 'string' },
    nodes: { type: 'string', default: '127.0.0.141,127.0.0.142,127.0.0.143,127.0.0.144' },
    'runbook-minutes': { type: 'string' },
    'no-supervisor': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const kills = Math.round(positive('kills', values.kills, 20));
const minutes = positive('minutes', values.minutes, Math.max(5, kills * 0.5));
const seed =
  values.seed === undefined ? randomSeed() : Math.round(positive('seed', values.seed, 1));
const addresses = values.nodes.split(',').map((n) => n.trim());
if (addresses.length < 4 || new Set(addresses).size !== addresses.length) {
  console.error(`--nodes needs four or more distinct loopback addresses\n${usage}`);
  process.exit(2);
}

console.error(`[chaos] seed ${seed} (pass --seed ${seed} to replay this campaign)`);
// The first Ctrl-C ends the campaign early but still checks and stops every server it started
// (ZooKeeper and Kafka run detached and would outlive it); a second one leaves at once.
const stop = new AbortController();
process.on('SIGINT', () => {
  if (stop.signal.aborted) process.exit(130);
  stop.abort();
});
const result = await runCampaign({
  signal: stop.signal,
  seed,
  kills,
  minutes,
  addresses,
  runbookTimeoutMinutes: positive('runbook-minutes', values['runbook-minutes'], 15),
  supervised: !values['no-supervisor'],
});
console.log(summary(result));
process.exit(result.problems.length === 0 ? 0 : 1);
