import path from 'node:path';
import { z } from 'zod';
import { ClusterGuardError } from '../../contracts/errors.js';
import { describeZodError } from '../../contracts/validation.js';

/**
 * The appliance's own application (docs/design.md: "Controller 仅实现了备份，还原操作" — backup and
 * restore only). Its data folders come from the agent's local configuration, never from a
 * runbook input (DESIGN.md, trust boundaries).
 */
export interface ControllerOptions {
  /** Absolute paths of the folders to back up and restore. */
  dataFolders: string[];
}

export const controllerOptionsSchema = z
  .object({
    dataFolders: z
      .array(
        z
          .string()
          .refine((p) => path.isAbsolute(p), 'must be an absolute path')
          .transform((p) => path.resolve(p)),
      )
      .default([]),
  })
  .superRefine((o, ctx) => {
    o.dataFolders.forEach((a, i) => {
      if (a === path.parse(a).root) {
        ctx.addIssue({
          code: 'custom',
          path: ['dataFolders', i],
          message: `${a} is a file system root`,
        });
      }
      o.dataFolders.forEach((b, j) => {
        // Nested folders would be backed up twice and replaced twice on restore.
        if (i < j && (a === b || b.startsWith(a + path.sep) || a.startsWith(b + path.sep))) {
          ctx.addIssue({
            code: 'custom',
            path: ['dataFolders', j],
            message: a === b ? `${a} is listed twice` : `${a} and ${b} overlap`,
          });
        }
      });
    });
  });

export function parseControllerOptions(
  options: Partial<ControllerOptions> | undefined,
): ControllerOptions {
  const parsed = controllerOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `invalid controller options: ${describeZodError(parsed.error)}`,
    );
  }
  return parsed.data;
}

/** Written next to the copied folders; restore reads it to know where each copy goes. */
export const CONTROLLER_MANIFEST = 'manifest.json';

const entryName = z
  .string()
  .regex(/^[^/\\]+$/, 'a single folder name')
  .refine((e) => e !== '.' && e !== '..' && e !== CONTROLLER_MANIFEST, 'a folder name');

export const controllerManifestSchema = z.object({
  component: z.literal('controller'),
  version: z.literal(1),
  createdAt: z.string(),
  node: z.string(),
  folders: z.array(
    z.object({
      /** The configured folder this copy came from, and where restore puts it back. */
      source: z.string().refine((p) => path.isAbsolute(p), 'an absolute path'),
      /** `<basename>-<index>` under the working folder. */
      entry: entryName,
      files: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
    }),
  ),
});
export type ControllerManifest = z.infer<typeof controllerManifestSchema>;

/** `<basename>-<index>`: readable, and distinct when two folders share a name. */
export function controllerEntryName(folder: string, index: number): string {
  return `${path.basename(folder)}-${index}`;
}
