/**
 * Kafka in KRaft mode (docs/design.md): every member is a combined broker + controller
 * bound to its own address.
 *
 * Controller quorum: dynamic (KIP-853, `controller.quorum.bootstrap.servers`), not static
 * `controller.quorum.voters`. With static voters, removing a controller means rewriting every
 * member's configuration and restarting all of them while the quorum is shrinking; with a dynamic
 * quorum the voter set lives in the metadata log and changes online (`add-controller`,
 * `remove-controller`), so a decommission never restarts the survivors and a survivor's stale
 * bootstrap list is harmless. The master formats its storage `--standalone` (a one-voter
 * quorum); every other member formats `--no-initial-controllers`, starts as an observer and adds
 * itself as a voter when it joins. A node already formatted for this cluster as the same node id
 * keeps its whole data folder on join and rejoin (see `join`); any other node's folder is wiped
 * and formatted anew. A node whose identity was lost comes back with a new directory id and first
 * removes its stale voter entry (same node id, old directory id), which needs a majority of the
 * other voters.
 *
 * log.dirs: the master generates every member's configuration, but each member has its own data
 * root, so the generated files name the data and log folders by tokens (`@KAFKA_DATA_FOLDER@`,
 * `@KAFKA_LOG_FOLDER@`). A node resolves them against its own layout each time it starts the
 * server, writing the effective files to `node-config/kafka/runtime/` (the files Kafka and its
 * tools read); `node-config/kafka/conf/` stays a byte-for-byte copy of what the master generated.
 *
 * Data operations (export/import/backup/restore) are cluster-wide: they talk to the cluster over
 * the Kafka protocol, so one node (the master) runs them for the whole cluster. Every topic but
 * the internal `__*` ones is written to `<op>-data/kafka/<topic>.jsonl` (one message a line:
 * partition, offset, timestamp, base64 key and value, headers) with `topics.json` listing
 * partitions, replication and topic-level configs. Import appends to existing topics, keeping a
 * record of how far it got so that a retry appends each message once (resume.ts); restore
 * deletes and recreates the topics it holds and leaves other topics alone. Timestamps are kept,
 * so messages older than a topic's retention are deleted by Kafka soon after they are written.
 */
export { createKafkaAdapter, type KafkaAdapter } from './adapter.js';
export * from './options.js';
export * from './config.js';
export * from './placement.js';
export * from './quorum.js';
export * from './dump-format.js';
