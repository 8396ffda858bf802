import { z } from 'zod';
import { clusterIdSchema } from './ping.js';

/** The Kafka topic every runbook event is published to (DESIGN.md "Events"). */
export const eventsTopic = 'clusterguard.events';

export const eventTypePrefix = 'io.clusterguard.';

/** CloudEvents `type` of every event a runbook may publish. */
export const runbookEventTypes = [
  'io.clusterguard.configuration.before-init',
  'io.clusterguard.configuration.after-init',
  'io.clusterguard.configuration.before-change',
  'io.clusterguard.configuration.after-change',
  'io.clusterguard.server.before-start',
  'io.clusterguard.server.after-start',
  'io.clusterguard.runbook.started',
  'io.clusterguard.runbook.parked',
  'io.clusterguard.runbook.completed',
  'io.clusterguard.runbook.failed',
  /** A bundle was uploaded to an agent and stored (issue 6); published by that agent. */
  'io.clusterguard.bundle.available',
  'io.clusterguard.bundle.installed',
  'io.clusterguard.bundle.rolled-back',
  /** clusterGuardian refused a membership change that would lose quorum (docs/design.md). */
  'io.clusterguard.guardian.unsafe-membership',
  /** A node agent started a server that had died, or gave up on it (docs/design.md, "Self-healing node"). */
  'io.clusterguard.server.restarted',
  'io.clusterguard.server.gave-up',
  /** clusterGuardian saw a node become unhealthy, or healthy again (docs/guardian.md). */
  'io.clusterguard.node.unhealthy',
  'io.clusterguard.node.recovered',
] as const;

export type RunbookEventType = (typeof runbookEventTypes)[number];

/**
 * What a workflow hands to the `publishEvent` activity. `time` is the workflow's own clock and
 * `id` is derived from the run id and a counter, so that a retried activity or a replayed
 * workflow produces the same event and the publisher can drop the copy.
 */
export const runbookEventSchema = z
  .object({
    id: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces'),
    type: z.enum(runbookEventTypes),
    clusterId: clusterIdSchema,
    runbook: z.string().min(1).max(128),
    workflowId: z.string().min(1).max(1000),
    /** What inside the cluster the event is about: a node address, a step id. */
    subject: z.string().min(1).max(1000).optional(),
    time: z.iso.datetime({ offset: true }),
    data: z.record(z.string(), z.unknown()),
  })
  .strict();

export type RunbookEvent = z.infer<typeof runbookEventSchema>;

/** A CloudEvents 1.0 envelope in structured JSON mode: the whole Kafka message value. */
export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: RunbookEventType;
  time: string;
  subject?: string;
  datacontenttype: 'application/json';
  data: Record<string, unknown>;
}

/** The CloudEvents `source` of a cluster's events, unless the publisher is told otherwise. */
export function eventSource(clusterId: string): string {
  return `/clusterguard/clusters/${clusterId}`;
}

/**
 * The envelope of one event. The cluster, runbook and workflow go into `data` after the
 * workflow's own fields, so that a workflow cannot make an event look like another runbook's.
 */
export function toCloudEvent(event: RunbookEvent, source: string): CloudEvent {
  return {
    specversion: '1.0',
    id: event.id,
    source,
    type: event.type,
    time: event.time,
    ...(event.subject === undefined ? {} : { subject: event.subject }),
    datacontenttype: 'application/json',
    data: {
      ...event.data,
      clusterId: event.clusterId,
      runbook: event.runbook,
      workflowId: event.workflowId,
    },
  };
}
