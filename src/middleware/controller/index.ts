/** The appliance's controller: its data folders backed up and restored (no process of ours). */
export { createControllerAdapter } from './adapter.js';
export {
  CONTROLLER_MANIFEST,
  controllerEntryName,
  controllerManifestSchema,
  controllerOptionsSchema,
  parseControllerOptions,
  type ControllerManifest,
  type ControllerOptions,
} from './options.js';
