import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  eventSource,
  eventsTopic,
  runbookEventSchema,
  runbookEventTypes,
  toCloudEvent,
  type RunbookEvent,
} from '../../src/contracts/events.js';

const event: RunbookEvent = {
  id: 'run-1f2e/3',
  type: 'io.clusterguard.server.after-start',
  clusterId: 'plant-7',
  runbook: 'addNode',
  workflowId: 'cg/plant-7/add/1',
  subject: '172.18.135.12',
  time: '2026-11-22T07:50:00.000Z',
  data: { component: 'kafka', healthy: true },
};

describe('runbook events', () => {
  test('the topic and every type are the documented ones', () => {
    assert.equal(eventsTopic, 'clusterguard.events');
    assert.equal(runbookEventTypes.length, 18);
    assert.ok(runbookEventTypes.includes('io.clusterguard.bundle.rolled-back'));
    for (const t of runbookEventTypes) assert.match(t, /^io\.clusterguard\.[a-z]+\.[a-z-]+$/);
    assert.ok(runbookEventTypes.includes('io.clusterguard.runbook.parked'));
  });

  test('the CloudEvents 1.0 envelope: required attributes, subject, data with the runbook', () => {
    const ce = toCloudEvent(runbookEventSchema.parse(event), eventSource('plant-7'));
    assert.deepEqual(ce, {
      specversion: '1.0',
      id: 'run-1f2e/3',
      source: '/clusterguard/clusters/plant-7',
      type: 'io.clusterguard.server.after-start',
      time: '2026-11-22T07:50:00.000Z',
      subject: '172.18.135.12',
      datacontenttype: 'application/json',
      data: {
        component: 'kafka',
        healthy: true,
        clusterId: 'plant-7',
        runbook: 'addNode',
        workflowId: 'cg/plant-7/add/1',
      },
    });
    // Structured mode: the value is plain JSON and round-trips.
    assert.deepEqual(JSON.parse(JSON.stringify(ce)), ce);
  });

  test('without a subject the attribute is absent; data cannot override the runbook', () => {
    const noSubject: RunbookEvent = { ...event, data: { runbook: 'forged', clusterId: 'other' } };
    delete noSubject.subject;
    const ce = toCloudEvent(noSubject, 'urn:x');
    assert.equal('subject' in ce, false);
    assert.equal(ce.source, 'urn:x');
    assert.equal(ce.data.runbook, 'addNode');
    assert.equal(ce.data.clusterId, 'plant-7');
  });

  test('the schema accepts offsets in time and refuses what a workflow must not send', () => {
    assert.ok(
      runbookEventSchema.safeParse({ ...event, time: '2026-11-22T08:50:00+01:00' }).success,
    );
    const refused: [string, unknown][] = [
      ['unknown type', { ...event, type: 'io.clusterguard.runbook.exploded' }],
      ['type without prefix', { ...event, type: 'runbook.started' }],
      ['empty id', { ...event, id: '' }],
      ['id with spaces', { ...event, id: 'a b' }],
      ['bad cluster id', { ...event, clusterId: 'Plant 7' }],
      ['time not ISO', { ...event, time: 'yesterday' }],
      ['data not a record', { ...event, data: ['x'] }],
      ['missing data', (({ data: _d, ...rest }) => rest)(event)],
      ['missing workflowId', (({ workflowId: _w, ...rest }) => rest)(event)],
      ['unknown key', { ...event, password: 'secret' }],
    ];
    for (const [what, value] of refused) {
      assert.equal(runbookEventSchema.safeParse(value).success, false, what);
    }
  });
});
