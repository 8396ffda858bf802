import type { Payload, PayloadCodec } from '@temporalio/common';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { z } from 'zod';
import { bearerToken, tokenMatches } from '../auth.js';
import type { Logger } from '../logger.js';

/**
 * The codec endpoint of the Temporal Web UI and CLI (`--ui-codec-endpoint`, the UI's codec
 * setting): `POST /decode` and `POST /encode` with `{ payloads: [{ metadata, data }] }`, bytes
 * base64 as in Temporal's JSON. It lets an authorised operator read decrypted payloads in the
 * UI; it answers only with the operator token, and only to the UI's origin.
 */
export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Bearer token the UI must send ("include credentials" / pass access token). */
  token: string;
  /** Origins allowed to call it from a browser: the Web UI's URL. */
  allowOrigins: string[];
  logger: Logger;
  maxBodyBytes?: number;
}

const payloadsSchema = z.object({
  payloads: z.array(
    z.object({
      metadata: z.record(z.string(), z.string()).optional(),
      data: z.string().optional(),
    }),
  ),
});

const fromJson = (p: z.infer<typeof payloadsSchema>['payloads'][number]): Payload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
  ),
  data: Buffer.from(p.data ?? '', 'base64'),
});

const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

export function createCodecApp(options: CodecServerOptions): Hono {
  const app = new Hono();
  app.use(
    '*',
    cors({
      origin: options.allowOrigins,
      allowHeaders: ['Authorization', 'Content-Type', 'X-Namespace'],
      allowMethods: ['POST', 'OPTIONS'],
      credentials: true,
    }),
  );
  app.use('*', bodyLimit({ maxSize: options.maxBodyBytes ?? 16 * 1024 * 1024 }));
  app.use('*', async (c, next) => {
    if (c.req.method === 'OPTIONS') return next();
    if (!tokenMatches(bearerToken(c.req.header('authorization')), options.token)) {
      options.logger.warn('codec request without the operator token refused', {
        path: c.req.path,
      });
      return c.json({ error: 'missing or wrong operator token' }, 401);
    }
    return next();
  });
  for (const op of ['encode', 'decode'] as const) {
    app.post(`/${op}`, async (c) => {
      let body: z.infer<typeof payloadsSchema>;
      try {
        body = payloadsSchema.parse(await c.req.json());
      } catch (err) {
        return c.json({ error: `expected {"payloads": [...]}: ${(err as Error).message}` }, 400);
      }
      try {
        const out = await options.codec[op](body.payloads.map(fromJson));
        return c.json({ payloads: out.map(toJson) });
      } catch (err) {
        // A payload of a key this ring lacks: say so, do not leak anything else.
        return c.json({ error: (err as Error).message }, 422);
      }
    });
  }
  return app;
}
