import { runIdOf } from '../../machines/command-runs.js';
import type { CommandEntry, WorkspaceEntry } from '../registry/registry.js';
import type { CoreParts } from './core-parts.js';

// Read your writes, for the actors' mirror. A user's promise settles as soon as the host knows
// its fact — run() once the process is spawned, `exited` once its exit and its output are
// known — and the command actor is told at that moment; it says so a thread hop later. What
// reads the actor's side (getSnapshot(), why()) first waits until the mirror has caught up with
// everything the host told the actor: the reads pay the hop, the run → exited path does not
// (issue 12, "one answer everywhere"; issue 17, the actor path).

/**
 * Past this, a read answers with what the mirror says, and the log says so: a worker that died
 * is re-hosted only once the main thread runs again.
 */
const CATCH_UP_CAP_MS = 1000;

const waiting = new WeakMap<CommandEntry, Array<() => void>>();

/** The mirror names every run the host told the actor of (SPAWNED), and shows every exit told (EXITED). */
export function hasCaughtUp(core: CoreParts, command: CommandEntry): boolean {
  const snapshot = command.snapshot;
  // An ended actor hears nothing more: what it said last is all it will say (a run spawned as it
  // stopped is never named). A new actor of the command (a restart by request) asks for its run
  // itself: its first snapshot is here before the host spawns.
  if (snapshot && snapshot.status !== 'active') return true;
  const unheard = core.table.unheard(command.key);
  if (unheard.length === 0) return true;
  const named = snapshot ? runIdOf(snapshot) : null;
  for (const run of unheard) {
    if (run.exit !== null) return false;
    // Run ids are monotonic ULIDs: a later one named means this one was known too.
    if (named === null || named < run.id) return false;
  }
  return true;
}

/** Resolves once the command's mirror has caught up (or its workspace is gone). */
export function whenCaughtUp(core: CoreParts, ws: WorkspaceEntry, command: CommandEntry): Promise<void> {
  if (hasCaughtUp(core, command)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      core.logger.warn({ ws: ws.id, command: command.key }, `the actor of command ${command.label} did not catch up within ${CATCH_UP_CAP_MS} ms; answering with what it said last`);
      done();
    }, CATCH_UP_CAP_MS);
    timer.unref();
    function done(): void {
      clearTimeout(timer);
      resolve();
    }
    let list = waiting.get(command);
    if (!list) waiting.set(command, (list = []));
    list.push(done);
    void ws.stopped.promise.then(done, done);
  });
}

/** The same, synchronously (getSnapshot()): the worker's answers are read off its port as they come. */
export function catchUpNow(core: CoreParts, ws: WorkspaceEntry, command: CommandEntry): void {
  if (hasCaughtUp(core, command) || core.closed) return;
  if (!core.pool.receiveNow(ws.worker, () => hasCaughtUp(core, command), CATCH_UP_CAP_MS)) {
    core.logger.warn({ ws: ws.id, command: command.key }, `the actor of command ${command.label} did not catch up within ${CATCH_UP_CAP_MS} ms; answering with what it said last`);
  }
}

/** The mirror of `command` changed: reads that waited for it may answer now. */
export function mirrorMoved(core: CoreParts, command: CommandEntry): void {
  const list = waiting.get(command);
  if (!list || !hasCaughtUp(core, command)) return;
  waiting.delete(command);
  for (const done of list) done();
}
