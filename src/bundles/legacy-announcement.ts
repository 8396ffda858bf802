import path from 'node:path';
import type { Message } from 'kafkajs';
import type { AppConfig } from '../config/app-config.js';
import type { BundleMeta } from '../contracts/bundles.js';
import type { RunbookEvent } from '../contracts/events.js';
import { createEventPublisher, type EventPublisher } from '../events/publisher.js';
import type { Logger } from '../logger.js';

/**
 * What the previous bundle service put on Kafka when a bundle was uploaded: a JSON object with
 * the channel its consumers filter on and, as a JSON **string**, the message; its consumers read
 * `symbolicname` from it and installed `<symbolicname>.jar`. The other keys are additions that
 * such consumers ignore (docs/bundles.md, "Announcement for consumers of the old service").
 */
export interface LegacyAnnouncement {
  channel: string;
  message: string;
}

export interface LegacyAnnouncementBody {
  symbolicname: string;
  version: string;
  /** The name the old service stored the jar under. */
  filename: string;
  sha256: string;
  bytes: number;
  /** Where the jar can be fetched (with the cluster token). */
  url: string;
  /** The node whose agent stored the upload. */
  node: string;
}

export function legacyAnnouncement(
  channel: string,
  meta: Pick<BundleMeta, 'symbolicName' | 'version' | 'sha256' | 'bytes'>,
  agentUrl: string,
  node: string,
): LegacyAnnouncement {
  const body: LegacyAnnouncementBody = {
    symbolicname: meta.symbolicName,
    version: meta.version,
    filename: `${meta.symbolicName}.jar`,
    sha256: meta.sha256,
    bytes: meta.bytes,
    url: `${agentUrl}/v1/bundles/${meta.sha256}`,
    node,
  };
  return { channel, message: JSON.stringify(body) };
}

/**
 * The spooled event carries the finished announcement in `data`, so that what reaches Kafka
 * after a restart is what was decided at upload time. No key: the old service sent none.
 */
export function legacyKafkaMessage(event: RunbookEvent): Message {
  const { channel, message } = event.data as Partial<LegacyAnnouncement>;
  return { value: JSON.stringify({ channel, message }) };
}

/**
 * The `bundle.available` event of an upload this agent stored, as sent on the stream `stream`
 * (its id is unique per stream, node and artifact).
 */
export function bundleAvailableEvent(
  config: AppConfig,
  stream: string,
  meta: BundleMeta,
  data: Record<string, unknown>,
): RunbookEvent {
  const address = config.node.address;
  return {
    id: `${stream}/${address}/${meta.sha256}`,
    type: 'io.clusterguard.bundle.available',
    clusterId: config.clusterId,
    runbook: 'bundleUpload',
    workflowId: `agent/${address}`,
    subject: meta.symbolicName,
    time: meta.storedAt,
    data,
  };
}

/**
 * A second publisher, with its own spool, for `bundles.legacyAnnouncement`; undefined when that
 * is not configured or events are off.
 */
export function legacyAnnouncer(deps: {
  config: AppConfig;
  spoolFolder: string;
  brokers: () => Promise<string[]>;
  logger: Logger;
}): { announce(meta: BundleMeta): Promise<void>; publisher: EventPublisher } | undefined {
  const { config } = deps;
  const legacy = config.bundles.legacyAnnouncement;
  if (!legacy || !config.events.enabled) return undefined;
  const address = config.node.address;
  const scheme = config.agent.tls ? 'https' : 'http';
  const agentUrl = `${scheme}://${address}:${config.agent.port}`;
  const publisher = createEventPublisher({
    brokers: deps.brokers,
    spoolFile: path.join(deps.spoolFolder, 'legacy-announcements-spool.jsonl'),
    logger: deps.logger,
    clientId: `clusterguard-agent-${address}-legacy`,
    topic: legacy.topic,
    toMessage: legacyKafkaMessage,
  });
  return {
    publisher,
    announce: (meta) =>
      publisher.enqueue(
        bundleAvailableEvent(config, 'bundle.legacy', meta, {
          ...legacyAnnouncement(legacy.channel, meta, agentUrl, address),
        }),
      ),
  };
}
