/** ZooKeeper: configuration, the four-letter words and wire protocol, znode dumps, the adapter. */
export { createZooKeeperAdapter } from './adapter.js';
export {
  applyZooKeeperConfig,
  ensembleMarkerFile,
  keepsZooKeeperData,
  generateZooKeeperConfig,
  NODE_DATA_PLACEHOLDER,
  zooKeeperDefaults,
  type ZooKeeperOptions,
} from './config.js';
export { readZooKeeperDump, withZooKeeperClient } from './dump.js';
export { fourLetterWord, parseEnsembleConfig } from './wire.js';
