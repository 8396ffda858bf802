/**
 * Pre-builds the orchestrator's workflow bundle into dist/workflow-bundle.js, which
 * `loadWorkflowBundle` then loads (`workflowBundle: { codePath }`) instead of bundling the
 * workflow code with webpack at every start. The Docker image runs this at build time.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { prebuiltBundlePath, workflowsPath } from '../worker/orchestrator.js';

const started = Date.now();
const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
await mkdir(path.dirname(prebuiltBundlePath), { recursive: true });
await writeFile(prebuiltBundlePath, code);
console.log(
  `workflow bundle: ${prebuiltBundlePath}, ${(code.length / 1024).toFixed(0)} KiB, built in ${Date.now() - started} ms`,
);
