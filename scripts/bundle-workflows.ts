/**
 * Pre-builds the orchestrator's workflow bundle into dist/workflow-bundle.js, which
 * `loadWorkflowBundle` then loads (`workflowBundle: { codePath }`) instead of bundling the
 * workflow code with webpack at every start. The Docker image runs this at build time.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { failureConverterPath } from '../src/client/transport.js';
import { prebuiltBundlePath, workflowsPath } from '../worker/workflow-bundle.js';

const started = Date.now();
// With the failure converter of payload encryption (src/client/failure-converter.ts): with a key
// ring, failure messages are encrypted; without one, they sit in a plain payload that every
// client still reads.
const { code } = await bundleWorkflowCode({
  workflowsPath,
  logger: new DefaultLogger('WARN'),
  failureConverterPath,
});
await mkdir(path.dirname(prebuiltBundlePath), { recursive: true });
await writeFile(prebuiltBundlePath, code);
console.log(
  `workflow bundle: ${prebuiltBundlePath}, ${(code.length / 1024).toFixed(0)} KiB, built in ${Date.now() - started} ms`,
);
