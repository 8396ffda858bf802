import { ApplicationFailure } from '@temporalio/common';
import { nodeAddressSchema } from '../src/contracts/addresses.js';
import type { ErrorType } from '../src/contracts/errors.js';
import { runbookEventSchema, type RunbookEvent } from '../src/contracts/events.js';
import { describeZodError } from '../src/contracts/validation.js';
import type { EventPublisher } from '../src/events/publisher.js';
import { describeActivity } from './interceptor.js';

export type PublishEventInput = RunbookEvent & {
  /** The cluster's members as the workflow knows them: where its Kafka brokers are. */
  nodes?: string[];
};

/**
 * The Kafka brokers of the cluster that reported its members last. One orchestrator serves one
 * appliance cluster in practice; with several, events go to the Kafka of the latest one.
 */
export interface KnownBrokers {
  remember(clusterId: string, nodes: string[]): void;
  brokers(): string[];
}

export function createKnownBrokers(kafkaPort: number, configured?: string[]): KnownBrokers {
  let latest: string[] = [];
  return {
    remember(_clusterId, nodes) {
      if (nodes.length > 0) latest = nodes.map((n) => `${n}:${kafkaPort}`);
    },
    brokers: () => (configured && configured.length > 0 ? configured : latest),
  };
}

export interface EventActivityDeps {
  publisher: EventPublisher;
  kafkaPort: number;
  /** Fixed brokers (`events.brokers`); otherwise they come from the nodes the workflows report. */
  brokers?: string[];
  /** Shared with the publisher's `brokers` option; made here when not given. */
  known?: KnownBrokers;
}

const nodesSchema = nodeAddressSchema.array().max(64);

/** Runs on the orchestrator's task queue: runbook events go to the spool, never to Kafka directly. */
export function createEventActivities(deps: EventActivityDeps) {
  const known = deps.known ?? createKnownBrokers(deps.kafkaPort, deps.brokers);
  return {
    async publishEvent(input: PublishEventInput): Promise<void> {
      const { nodes, ...rest } = input;
      const event = runbookEventSchema.safeParse(rest);
      const members = nodes === undefined ? undefined : nodesSchema.safeParse(nodes);
      if (!event.success || (members && !members.success)) {
        const problems = [
          ...(event.success ? [] : [describeZodError(event.error)]),
          ...(members && !members.success ? [`nodes: ${describeZodError(members.error)}`] : []),
        ];
        const type: ErrorType = 'InvalidInput';
        throw ApplicationFailure.nonRetryable(`invalid event: ${problems.join('; ')}`, type);
      }
      if (members?.data) known.remember(event.data.clusterId, members.data);
      describeActivity(`spooling event ${event.data.id}`);
      await deps.publisher.enqueue(event.data);
    },
  };
}

export type EventActivities = ReturnType<typeof createEventActivities>;
