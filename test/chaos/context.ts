import type { GreeterBundles } from '../helpers/felix-bundles.js';
import type { Stack } from '../helpers/stack.js';
import type { Traffic } from '../helpers/traffic.js';

/** What the runbook loop and the kill loop of one campaign share. */
export interface Campaign {
  stack: Stack;
  clusterId: string;
  /** Every node address; the first is the master throughout. */
  addresses: string[];
  /** The members right now, as the last completed membership runbook left them. */
  members: string[];
  traffic?: Traffic;
  /** The application the rollouts install into every member's Felix framework. */
  bundles: GreeterBundles;
  /** The agents' supervisors restart killed servers (see CampaignOptions.supervised). */
  supervised: boolean;
  /** A membership runbook runs: middleware is not killed meanwhile (see killTable). */
  membershipInFlight: boolean;
  /** A ZooKeeper or Kafka server is down: no membership runbook starts meanwhile. */
  middlewareDown: boolean;
  /** Set once the kill loop has made its last kill and restart. */
  killsDone: boolean;
  /** Set when a runbook failed: the kill loop stops after its restart in flight. */
  aborted: boolean;
  started: number;
  log(message: string): void;
}

export const master = (c: Campaign): string => c.addresses[0] as string;

export const elapsed = (c: Campaign): string => `${((Date.now() - c.started) / 1000).toFixed(1)} s`;
