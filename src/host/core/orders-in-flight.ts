import type { ChildEvent, WorkspaceEvent } from '../../protocol/machine-events.js';
import type { QuotaResource } from '../../protocol/stats.js';
import type { WorkspaceEntry } from '../registry/registry.js';
import { isLive } from './command-control.js';

// A user's order (run a command or a pipeline; stop a workspace, a command, a pipeline) is an
// event to an actor on a worker thread. A thread that dies before it handled one takes it
// along: its actors come back from their last persisted snapshot, taken before the order, and
// the caller's `await` waits for ever (a stop while the processes run on). So every order sent
// is kept here, on the main thread, until its actor shows it was handled, and re-hosting tells
// the ones still open again, in the order they were given:
// - a run, until the command's (or pipeline's) actor reported itself: its snapshot travels in
//   the same batch as the persisted tree holding it, so a run the host saw handled is in the
//   snapshot a re-hosting starts from, and one it did not see never asked for a process;
// - a stop, until its actor ended; the workspace's, as long as the workspace lives. A machine
//   ignores a stop it is already carrying out (the same deadline does not shorten its grace).
// One order the runtime gives itself is kept too: a quota breach. The quota actor reports a
// breach once per episode, so one lost with its thread was never told again:
// - a kill (action 'kill') is kept as a workspace stop is, and the workspace would have run on
//   past its quota; a workspace that already stops ignores it;
// - a warning (action 'log') is kept until the host logged it, and the breach would have gone
//   unwarned; told again, it is warned (twice only when the dying thread's warning arrives
//   after the new thread's).

type Order = Extract<WorkspaceEvent | ChildEvent, { type: 'STOP' | 'RUN' | 'RUN_PIPELINE' }> | Extract<WorkspaceEvent, { type: 'QUOTA_BREACH' }>;

/** The workspace's own stop is kept under this key; a child's orders under its key. */
const WORKSPACE = '';

/** Per workspace, its open orders by `type:key`, in the order given; held weakly, a forgotten workspace takes its own along. */
const open = new WeakMap<WorkspaceEntry, Map<string, { key: string; event: Order }>>();

/** Called for every event sent to a workspace actor or to one of its children (key given). */
export function noteSent(ws: WorkspaceEntry, event: WorkspaceEvent | ChildEvent, key = WORKSPACE): void {
  let orders = open.get(ws);
  if (orders) dropHandled(ws, orders);
  if (event.type === 'RUN' || event.type === 'RUN_PIPELINE') {
    // A new run of a command (a restart) ends what an earlier stop of it ordered.
    orders?.delete(`STOP:${event.key}`);
    key = event.key;
  } else if (event.type === 'QUOTA_BREACH' && event.action === 'log') {
    key = `log:${event.resource}`;
  } else if (!isKept(event, key)) {
    if (orders?.size === 0) open.delete(ws);
    return;
  }
  if (!orders) open.set(ws, (orders = new Map()));
  const id = `${event.type}:${key}`;
  const earlier = orders.get(id)?.event;
  // Of two stops, the one with the nearer deadline is the one the actor ends up following.
  if (earlier?.type === 'STOP' && event.type === 'STOP' && deadlineOf(earlier) <= deadlineOf(event)) return;
  orders.set(id, { key, event: event as Order });
}

/** The orders a re-hosted workspace's actors must hear again, in the order given: to the workspace's actor (child null), or to a child's. */
export function ordersToRetell(ws: WorkspaceEntry): Array<{ child: string | null; event: Order }> {
  const orders = open.get(ws);
  if (!orders) return [];
  dropHandled(ws, orders);
  return [...orders.values()].map(({ key, event }) => ({ child: event.type === 'STOP' && key !== WORKSPACE ? key : null, event }));
}

/** A breach's warning was logged: it is not told again. */
export function noteBreachLogged(ws: WorkspaceEntry, resource: QuotaResource): void {
  const orders = open.get(ws);
  orders?.delete(`QUOTA_BREACH:log:${resource}`);
  if (orders?.size === 0) open.delete(ws);
}

function dropHandled(ws: WorkspaceEntry, orders: Map<string, { key: string; event: Order }>): void {
  for (const [id, { key, event }] of orders) {
    if (event.type === 'QUOTA_BREACH' || (event.type === 'STOP' && key === WORKSPACE)) continue;
    if (!stillOpen(ws, key, event)) orders.delete(id);
  }
}

function stillOpen(ws: WorkspaceEntry, key: string, event: Order): boolean {
  const command = ws.commands.get(key);
  const pipeline = ws.pipelines.get(key);
  if (event.type === 'RUN') {
    // A restart's run is handled once the actor reports the new count.
    return command !== undefined && (command.snapshot === null || Number(command.snapshot.context.restarts ?? 0) < (event.restarts ?? 0));
  }
  if (event.type === 'RUN_PIPELINE') return pipeline !== undefined && pipeline.snapshot === null && !pipeline.done.settled;
  return command ? isLive(command) : pipeline ? !pipeline.done.settled : false;
}

/** Besides runs: stops, but a shutdown's (a shutdown re-hosts nothing), and quota kills. */
function isKept(event: WorkspaceEvent | ChildEvent, key: string): boolean {
  if (event.type === 'QUOTA_BREACH') return event.action === 'kill';
  return event.type === 'STOP' && !(key === WORKSPACE && event.reason === 'shutdown');
}

function deadlineOf(stop: Extract<Order, { type: 'STOP' }>): number {
  return stop.at + (stop.graceMs ?? Number.POSITIVE_INFINITY);
}
