/**
 * The orchestrator's workflow code: bundled from source at start, pre-built for deployments
 * (`npm run build:bundle`, CG_WORKFLOW_BUNDLE), or shared within one test run.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, bundleWorkflowCode, type WorkflowBundleOption } from '@temporalio/worker';
import { repoRoot } from '../src/process.js';

/** Beside this file: `workflows/index.ts` from source, `dist/workflows/index.js` when built. */
export const workflowsPath = fileURLToPath(
  new URL(`../workflows/index${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);
/** Where `npm run build:bundle` leaves the pre-built bundle (`workflowBundle: { codePath }`). */
export const prebuiltBundlePath = path.join(repoRoot, 'dist', 'workflow-bundle.js');

/** What goes into the workflow bundle besides the workflows (see loadWorkflowBundle). */
export interface WorkflowBundleExtras {
  /** The data converter's `failureConverterPath` (payload encryption on: failure-converter.ts). */
  failureConverterPath?: string | undefined;
  /** Workflow interceptor modules (tracing: src/observability/tracing.ts). */
  workflowInterceptorModules?: string[] | undefined;
}

/**
 * The workflow code: the pre-built bundle named by CG_WORKFLOW_BUNDLE (the Docker image sets
 * it), else bundled now from source (a few seconds) with `extras`. Only when named: a bundle
 * left in dist/ by an earlier build would otherwise run workflow code older than the source
 * beside it. A pre-built bundle carries what `npm run build:bundle` put in it (the encoding
 * failure converter, no tracing interceptors).
 */
export async function loadWorkflowBundle(
  extras: WorkflowBundleExtras = {},
): Promise<WorkflowBundleOption> {
  const prebuilt = process.env.CG_WORKFLOW_BUNDLE;
  if (prebuilt) {
    if (!existsSync(prebuilt)) {
      throw new Error(
        `CG_WORKFLOW_BUNDLE names ${prebuilt}, which does not exist: run npm run build:bundle, or unset it`,
      );
    }
    return { codePath: prebuilt };
  }
  const bundle = () =>
    bundleWorkflowCode({
      workflowsPath,
      logger: new DefaultLogger('WARN'),
      ...(extras.failureConverterPath ? { failureConverterPath: extras.failureConverterPath } : {}),
      ...(extras.workflowInterceptorModules?.length
        ? { workflowInterceptorModules: extras.workflowInterceptorModules }
        : {}),
    });
  const cacheDir = process.env.CG_WORKFLOW_BUNDLE_CACHE;
  return cacheDir ? cachedBundle(cacheDir, extras, bundle) : bundle();
}

/**
 * CG_WORKFLOW_BUNDLE_CACHE: a folder where the processes of one test run (test/run.ts makes it
 * and removes it) share the bundles they build, one per set of extras, instead of each
 * orchestrator start bundling again (7 CPU-seconds each). The key is the extras only, so the
 * folder must not outlive the sources it was built from: it is not for deployments, which
 * pre-build once (CG_WORKFLOW_BUNDLE).
 */
async function cachedBundle(
  cacheDir: string,
  extras: WorkflowBundleExtras,
  bundle: () => Promise<{ code: string }>,
): Promise<WorkflowBundleOption> {
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        workflowsPath,
        extras.failureConverterPath ?? '',
        extras.workflowInterceptorModules ?? [],
      ]),
    )
    .digest('hex')
    .slice(0, 16);
  const codePath = path.join(cacheDir, `workflow-bundle-${key}.js`);
  if (existsSync(codePath)) return { codePath };
  const { code } = await bundle();
  // Written aside and renamed: a process reading the cache never sees half a bundle.
  const partial = `${codePath}.${process.pid}.partial`;
  await mkdir(cacheDir, { recursive: true });
  await writeFile(partial, code);
  await rename(partial, codePath);
  return { codePath };
}
