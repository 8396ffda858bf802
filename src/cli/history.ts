import type { History } from '@temporalio/common/lib/proto-utils.js';

/** `clusterguard history`: a run's events as rows, in the JSON form other Temporal tools use. */

export interface HistoryRow {
  eventId: number;
  eventTime: string;
  eventType: string;
  /** The activity, signal, update, timer or child the event concerns; a failure's message. */
  detail?: string;
}

type Attributes = Record<string, unknown>;

function pick(attrs: Attributes): string | undefined {
  const named = (k: string) => (attrs[k] as { name?: string } | undefined)?.name;
  const failure = (attrs.failure as { message?: string } | undefined)?.message;
  const update = (attrs.acceptedRequest as { input?: { name?: string } } | undefined)?.input?.name;
  const parts = [
    named('activityType') ?? named('workflowType'),
    attrs.signalName as string | undefined,
    update,
    typeof attrs.timerId === 'string' ? `timer ${attrs.timerId}` : undefined,
    attrs.workflowId as string | undefined,
    failure,
  ].filter((p): p is string => typeof p === 'string' && p !== '');
  return parts.length ? parts.join(': ') : undefined;
}

export async function historyRows(history: History): Promise<HistoryRow[]> {
  const { historyToJSON } = await import('@temporalio/common/lib/proto-utils.js');
  const json = JSON.parse(historyToJSON(history)) as { events?: Record<string, unknown>[] };
  return (json.events ?? []).map((e) => {
    const attrsKey = Object.keys(e).find((k) => k.endsWith('EventAttributes'));
    const detail = attrsKey ? pick(e[attrsKey] as Attributes) : undefined;
    return {
      eventId: Number(e.eventId),
      eventTime: String(e.eventTime),
      eventType: String(e.eventType).replace(/^EVENT_TYPE_/, ''),
      ...(detail ? { detail } : {}),
    };
  });
}

export function historyTable(rows: HistoryRow[]): string {
  const width = Math.max(5, ...rows.map((r) => r.eventType.length));
  return rows
    .map((r) =>
      [String(r.eventId).padStart(5), r.eventTime, r.eventType.padEnd(width), r.detail ?? '']
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
