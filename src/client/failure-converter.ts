import { DefaultFailureConverter } from '@temporalio/common';

/**
 * The failure converter of every process whose payloads are encrypted (src/client/transport.ts
 * names this file as `failureConverterPath`, so that the workflow bundle carries it too): a
 * failure's message and stack trace move into a payload, which the codec then encrypts, so an
 * error that quotes a secret never reaches Temporal's history in clear. The history shows
 * "Encoded failure"; a client with the key ring reads the real message.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
