import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCampaign, summary } from '../chaos/campaign.js';
import { randomSeed } from '../chaos/rng.js';

/**
 * A short chaos campaign (README "Chaos campaign"): runbooks one after the other on four
 * loopback nodes (127.0.0.141–.144, which no other test binds) while six processes are SIGKILLed
 * and restarted and a client writes all the time. A random seed each run, printed, so that a
 * failure replays: CG_CHAOS_SEED=<seed> or `npm run chaos -- --seed <seed> --kills 6 --minutes 1`.
 */
test(
  'a short chaos campaign loses no acknowledged write and leaves the cluster whole',
  { timeout: 900_000 },
  async () => {
    const seed = process.env.CG_CHAOS_SEED ? Number(process.env.CG_CHAOS_SEED) : randomSeed();
    console.error(`[chaos] seed ${seed}`);
    const result = await runCampaign({
      seed,
      kills: 6,
      minutes: 1,
      addresses: ['127.0.0.141', '127.0.0.142', '127.0.0.143', '127.0.0.144'],
      runbookTimeoutMinutes: 8,
    });
    console.error(summary(result));
    assert.deepEqual(
      result.problems,
      [],
      `campaign with seed ${seed} failed; replay with CG_CHAOS_SEED=${seed}`,
    );
    assert.equal(result.kills.length, 6, 'every kill was made');
    assert.ok(
      (result.report?.kafkaAcknowledged ?? 0) > 0 && (result.report?.zkAcknowledged ?? 0) > 0,
      'the client wrote',
    );
    assert.ok(result.runbooks.length >= 2, 'runbooks ran beside the bootstrap');
  },
);
