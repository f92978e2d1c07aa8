import { openRuntime, type Runtime } from './host/runtime.js';
import type { RuntimeOptions } from './host/core/runtime-options.js';
import { checkInspectorOptions, startInspector } from './inspector/server.js';

// The package's entry point: the runtime facade with the inspector attached. It sits above
// both (the inspector reads the runtime; the runtime never imports the inspector).

/** Starts a runtime: its worker threads, host, reaper. Shut it down with `shutdown()`. */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  // A bad inspector address fails before any thread starts.
  const inspector = options.inspector === undefined ? null : checkInspectorOptions(options.inspector);
  return openRuntime(options, inspector ? (core) => startInspector(core, inspector) : null);
}
