// What every operation of the control socket is served with: the runtime's public API, the
// daemon's view of its tables (names resolve against it), and the one place where workspaces are
// made for a label, so that concurrent requests for a new label share one.
import type { Runtime } from '../host/runtime.js';
import type { RuntimeView } from '../host/runtime-view.js';
import type { WorkspaceMaker } from './serve-workspace-for.js';

export interface ServeContext {
  readonly rt: Runtime;
  readonly core: RuntimeView;
  readonly workspaces: WorkspaceMaker;
}

/** An operation's answer: one result, or a stream of events ended by a result. */
export type Streamed = { result: unknown } | { stream: (emit: (event: unknown) => void, end: (result: unknown) => void) => () => void };
