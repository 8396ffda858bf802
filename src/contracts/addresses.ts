import { z } from 'zod';

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// RFC 1123 host names; kept strict so an address is always safe as a folder or file name.
const hostname =
  /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** True for an IPv4 address or an RFC 1123 host name: safe to use as a path segment. */
export function isNodeAddress(value: string): boolean {
  return ipv4.test(value) || (hostname.test(value) && !/^[\d.]+$/.test(value));
}

export const nodeAddressSchema = z.string().trim().refine(isNodeAddress, {
  message: 'expected an IPv4 address (e.g. 172.18.135.11) or a host name',
});

/** A list of distinct node addresses; the first is the master (docs/design.md). */
export const nodeListSchema = z
  .array(nodeAddressSchema)
  .min(1, 'expected at least one node address')
  .superRefine((nodes, ctx) => {
    const seen = new Set<string>();
    for (const n of nodes) {
      if (seen.has(n)) ctx.addIssue({ code: 'custom', message: `duplicate node address ${n}` });
      seen.add(n);
    }
  });

/** The task queue that a node's agent polls. */
export function nodeTaskQueue(address: string): string {
  return `cg-node-${address}`;
}

/** The task queue of the orchestrator (all workflows and cluster-level activities). */
export const orchestratorTaskQueue = 'clusterguard';
