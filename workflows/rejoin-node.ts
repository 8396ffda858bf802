import {
  type MembershipRunbookResult,
  type RejoinNodeInput,
} from '../src/contracts/membership-runbooks.js';
import { runJoin } from './join-node.js';
import { openRunbook } from './lib/open.js';

/**
 * A former member comes back (docs/design.md, rejoinCluster): as joinNode, but CockroachDB keeps its
 * store, and Kafka keeps its KRaft identity while its messages are copied back from the others.
 */
export async function rejoinNode(rawInput: RejoinNodeInput): Promise<MembershipRunbookResult> {
  const { input, ...base } = await openRunbook('rejoinNode', rawInput);
  return runJoin({ ...input, rejoin: true }, base);
}
