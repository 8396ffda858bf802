import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  legacyAnnouncement,
  legacyKafkaMessage,
  type LegacyAnnouncementBody,
} from '../../src/bundles/legacy-announcement.js';
import { loadAppConfig } from '../../src/config/app-config.js';

const meta = {
  symbolicName: 'com.example.reports',
  version: '2.0.1',
  sha256: 'a'.repeat(64),
  bytes: 5120,
};

describe('announcement for consumers of the old bundle service', () => {
  test('the old shape: channel, and the message as a JSON string with symbolicname', () => {
    const a = legacyAnnouncement('bundle-upload', meta, 'http://10.0.0.1:7700', '10.0.0.1');
    assert.deepEqual(Object.keys(a).sort(), ['channel', 'message']);
    assert.equal(a.channel, 'bundle-upload');
    assert.equal(typeof a.message, 'string');
    // What an old consumer does: new JSONObject(message.getMessage()).getString("symbolicname").
    const body = JSON.parse(a.message) as LegacyAnnouncementBody;
    assert.equal(body.symbolicname, 'com.example.reports');
    assert.deepEqual(body, {
      symbolicname: 'com.example.reports',
      version: '2.0.1',
      filename: 'com.example.reports.jar',
      sha256: meta.sha256,
      bytes: 5120,
      url: `http://10.0.0.1:7700/v1/bundles/${meta.sha256}`,
      node: '10.0.0.1',
    });
  });

  test('the Kafka record is the gson object of the old service, without a key', () => {
    const a = legacyAnnouncement('ch', meta, 'https://h:1', 'h');
    const record = legacyKafkaMessage({
      id: 'x',
      type: 'io.clusterguard.bundle.available',
      clusterId: 'plant-7',
      runbook: 'bundleUpload',
      workflowId: 'agent/h',
      time: '2026-12-06T00:00:00.000Z',
      data: { ...a },
    });
    assert.equal(record.key, undefined);
    assert.deepEqual(JSON.parse(String(record.value)), a);
  });

  test('off by default; topic and channel from the configuration or the environment', async () => {
    assert.equal((await loadAppConfig({ env: {} })).bundles.legacyAnnouncement, undefined);
    const config = await loadAppConfig({
      env: {
        CG_BUNDLES__LEGACY_ANNOUNCEMENT__TOPIC: 'test',
        CG_BUNDLES__LEGACY_ANNOUNCEMENT__CHANNEL: 'bundle',
      },
    });
    assert.deepEqual(config.bundles.legacyAnnouncement, { topic: 'test', channel: 'bundle' });
    await assert.rejects(
      loadAppConfig({ env: { CG_BUNDLES__LEGACY_ANNOUNCEMENT__TOPIC: 'a topic' } }),
      /legacyAnnouncement/,
    );
  });
});
