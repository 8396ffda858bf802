import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Registered at dev-server start (`--search-attribute`) and set by every runbook. */
export const clusterIdKey = defineSearchAttributeKey('ClusterId', SearchAttributeType.KEYWORD);
export const runbookKey = defineSearchAttributeKey('Runbook', SearchAttributeType.KEYWORD);
export const nodesKey = defineSearchAttributeKey('Nodes', SearchAttributeType.KEYWORD_LIST);

/** `--search-attribute` values for `temporal server start-dev`. */
export const devServerSearchAttributes = [
  'ClusterId=Keyword',
  'Runbook=Keyword',
  'Nodes=KeywordList',
];
