import { ShumaError } from '../../protocol/errors.js';
import type { ActorSnapshot } from '../../protocol/actor-records.js';
import type { RelaunchOrder } from '../../protocol/host-requests.js';
import type { ChildEvent } from '../../protocol/machine-events.js';
import { stateName } from '../../protocol/state-value.js';
import { hasHeardExitOf, runIdOf } from '../../machines/command-runs.js';
import type { RunEntry } from '../processes/process-table.js';
import { signalGroup } from '../processes/signals.js';
import type { CommandEntry, WorkspaceEntry } from '../registry/registry.js';
import type { HostActorDeps } from './host-actor-deps.js';

// A restart without a round trip (issue 17). A command actor whose policy relaunches at once
// hands the host, with each spawn request, a standing order for the run it asks for. When that
// run exits as the order says, the host starts the next run there and then — before the actor
// has heard the exit — and holds it: the actor hears the exit, decides (as it always does), and
// asks for the run; the answer is the run already started. Until the actor has asked, the run
// is not told (its SPAWNED, and its exit if it came first, wait), so the actor's story is the
// one it always was. If the actor decides otherwise (a stop, a give-up, a new actor), the run
// is killed and forgotten by the reads of the actor (core/caught-up.ts). A signal the actor
// sends to the run (a stop of it alone, a group restart) revokes the order first; a stop asked
// on this thread revokes it as it is sent, a round trip before the actor's signal (an exit in
// between would start a run the actor, stopping, never asks for).
//
// The exit that sets a relaunch off is told to the actor once the next run has started, not
// before: told first, the worker thread handled it while the clone and exec ran, and its answer
// (snapshot, request) reached the main thread as the spawn completed — on two cores the loop then
// waited behind the worker and the new program for a CPU, and learnt of the exec ~0.2-0.4 ms late
// (traced: median "exec done -> loop told" 0.03 ms when the worker was idle, 0.3 ms when it was
// not). The actor's story is unchanged: it hears the exit, then asks, and the answer is ready.
// (A spawner whose spawn takes long — an srun step — would hold the exit as long: worth weighing
// before such a spawner says `actsAhead`.)

/** A run started ahead of its actor's request. */
interface Ahead {
  ws: WorkspaceEntry;
  command: CommandEntry;
  /** The order the run carries once it exists (a first run's comes with the actor's request). */
  order: RelaunchOrder | undefined;
  /** The restart count the actor will ask for. */
  restarts: number;
  /** The run whose exit set it off; null: the first run, started as the command was run (runAhead). */
  after: string | null;
  /** The actor asked for it. */
  asked: boolean;
  /** Null while the spawn is under way. */
  outcome: RunEntry | ShumaError | null;
  /** Its exit, when it came before the actor asked. */
  held: ChildEvent[];
  /** The exit that set it off, told to the actor once this run's spawn is done (or at a stop). */
  untold: ChildEvent | null;
}

/** What the host actor lends the orders: starting a run, and telling a refusal as it tells its own. */
export interface AheadSpawner {
  /** Spawns for `command` with `restarts`; `done` is called, as a host message, with the run or why not. */
  spawnAhead(ws: WorkspaceEntry, command: CommandEntry, restarts: number, done: (result: RunEntry | ShumaError) => void): void;
  refuse(ws: WorkspaceEntry, command: CommandEntry, error: ShumaError): void;
}

export class StandingOrders {
  /** The order each run carries, by run id, until it exits or is revoked. */
  private readonly orders = new Map<string, RelaunchOrder>();
  /** At most one run ahead per command, by `wsId/key`. */
  private readonly ahead = new Map<string, Ahead>();
  /** Commands told to stop whose actor has not ended yet: no order of theirs stands. */
  private readonly stopping = new WeakSet<CommandEntry>();

  constructor(
    private readonly deps: HostActorDeps,
    private readonly spawner: AheadSpawner,
  ) {}

  /** A run was spawned at its actor's request carrying this order. */
  give(command: CommandEntry, run: RunEntry, order: RelaunchOrder | undefined): void {
    if (order && this.deps.spawner.actsAhead === true && !this.stopping.has(command)) this.orders.set(run.id, order);
  }

  /** Its actor is told to stop (STOP sent now): nothing relaunches it ahead any more. */
  stop(ws: WorkspaceEntry, command: CommandEntry): void {
    this.stopping.add(command);
    for (const run of this.deps.table.ofWorkspace(ws.id)) if (run.key === command.key) this.orders.delete(run.id);
    // A run already started ahead is still asked for (the exit before it reaches the actor before the stop), without an order.
    const ahead = this.ahead.get(keyOf(ws, command.key));
    if (!ahead) return;
    ahead.order = undefined;
    // Its exit, if still untold, goes now: the actor hears it before the stop, as without the relaunch.
    if (ahead.command === command) this.tellExit(ahead);
  }

  /** The actor will end this run itself: no relaunch ahead of it. */
  revoke(runId: string): void {
    this.orders.delete(runId);
  }

  /**
   * The actor asks for run `restarts`: true when it was started ahead (the answer is told now,
   * or once its spawn is done); false to spawn as usual.
   */
  asked(ws: WorkspaceEntry, command: CommandEntry, restarts: number, relaunch: RelaunchOrder | undefined): boolean {
    const ahead = this.ahead.get(keyOf(ws, command.key));
    if (!ahead) return false;
    if (ahead.command !== command || ahead.ws !== ws || ahead.restarts !== restarts) {
      this.reject(ahead);
      return false;
    }
    ahead.asked = true;
    if (ahead.after === null) {
      ahead.order = relaunch;
      if (ahead.outcome && !(ahead.outcome instanceof ShumaError)) this.give(command, ahead.outcome, relaunch);
    }
    if (ahead.outcome) this.tell(ahead);
    return true;
  }

  /**
   * A command just run, with nothing to wait for (no dependency, no probe): its actor's first
   * request is certain unless its workspace stops first, so its first run starts now, held
   * like a relaunch until the actor asks. run() still settles when the actor has asked.
   *
   * The spawn is submitted a microtask later, after the command's RUN (queued just before, its
   * flush a microtask queued earlier) has left for the worker: submitted first, the spawner
   * thread (short slice) and the new program took the loop's CPU and the RUN left 0.2-0.3 ms
   * late, so the actor's first request came back later than the exec (ws.run → exited, bench (a)).
   */
  runAhead(ws: WorkspaceEntry, command: CommandEntry): void {
    if (this.deps.spawner.actsAhead !== true || ws.hostStop || this.ahead.has(keyOf(ws, command.key))) return;
    const ahead: Ahead = { ws, command, order: undefined, restarts: 0, after: null, asked: false, outcome: null, held: [], untold: null };
    this.ahead.set(keyOf(ws, command.key), ahead);
    queueMicrotask(() => this.spawner.spawnAhead(ws, command, 0, (result) => this.spawned(ahead, result)));
  }

  /** Every command exit the reaper tells goes through here: a held run's waits, an ordered one relaunches. */
  exited(ws: WorkspaceEntry, key: string, event: ChildEvent): void {
    if (event.type === 'EXITED') {
      const ahead = this.ahead.get(keyOf(ws, key));
      if (ahead && !ahead.asked && ahead.outcome !== null && !(ahead.outcome instanceof ShumaError) && ahead.outcome.id === event.runId) {
        // Its workspace stops before its actor asked (or ever existed): it never will.
        if (ws.hostStop) this.reject(ahead);
        else ahead.held.push(event);
        return;
      }
      // Relaunched on its order: the exit is told once the next run has started (spawned()).
      if (!this.relaunch(ws, key, event)) this.deps.toChild(ws, key, event);
      return;
    }
    this.deps.toChild(ws, key, event);
  }

  /** The command actor's mirror moved: an actor that heard the exit and did not ask never will. */
  moved(ws: WorkspaceEntry, command: CommandEntry, snapshot: ActorSnapshot): void {
    // Its last request came before this (a request is sent before the snapshot of the step that made it).
    if (snapshot.status !== 'active') this.stopping.delete(command);
    const ahead = this.ahead.get(keyOf(ws, command.key));
    if (!ahead || ahead.asked) return;
    if (ahead.command !== command) {
      this.reject(ahead);
      return;
    }
    const run = ahead.outcome instanceof ShumaError ? null : ahead.outcome;
    // Told of it another way (re-hosted after its thread died: the process table is told again).
    if (run && runIdOf(snapshot) === run.id) {
      this.ahead.delete(keyOf(ahead.ws, command.key));
      return;
    }
    // A request is sent before the snapshot of the step that made it: one still to come is not.
    // A new actor's first snapshot (`starting`) may come before its first request.
    const state = stateName(snapshot.value);
    const asking = ahead.after === null
      ? state === 'waiting' || state === 'starting'
      : state === 'restarting' && snapshot.context.restarts === ahead.restarts;
    if (snapshot.status !== 'active' || (!asking && (ahead.after === null || hasHeardExitOf(snapshot, ahead.after)))) this.reject(ahead);
  }

  /** True when the next run is being started on the run's order (the exit is then told after it). */
  private relaunch(ws: WorkspaceEntry, key: string, event: ChildEvent & { type: 'EXITED' }): boolean {
    const order = this.orders.get(event.runId);
    if (!order) return false;
    this.orders.delete(event.runId);
    const run = this.deps.table.get(event.runId);
    const command = ws.commands.get(key);
    // The actor's own guards, as they will read: `relaunches` and `mayRestart` (machines/command-setup.ts).
    const relaunches = order.always || event.status !== 0;
    const mayRestart = run !== undefined && (order.maxRestarts === 0 || run.restarts < order.maxRestarts);
    if (!run || !command || !relaunches || !mayRestart || ws.hostStop || this.deps.registry.get(ws.id) !== ws) return false;
    if (this.ahead.has(keyOf(ws, key))) return false;
    const ahead: Ahead = { ws, command, order, restarts: run.restarts + 1, after: run.id, asked: false, outcome: null, held: [], untold: event };
    this.ahead.set(keyOf(ws, key), ahead);
    this.spawner.spawnAhead(ws, command, ahead.restarts, (result) => this.spawned(ahead, result));
    return true;
  }

  /** The exit that set `ahead` off reaches its actor (once). */
  private tellExit(ahead: Ahead): void {
    const event = ahead.untold;
    if (!event) return;
    ahead.untold = null;
    this.deps.toChild(ahead.ws, ahead.command.key, event);
  }

  private spawned(ahead: Ahead, result: RunEntry | ShumaError): void {
    // Whatever became of the run (started, refused, no longer wanted), the exit before it is told first.
    this.tellExit(ahead);
    ahead.outcome = result;
    if (!(result instanceof ShumaError)) this.give(ahead.command, result, ahead.order);
    if (this.ahead.get(keyOf(ahead.ws, ahead.command.key)) !== ahead) this.discard(ahead);
    else if (ahead.asked) this.tell(ahead);
  }

  /** The actor asked and the spawn is done: it hears the answer it would have heard, then what followed. */
  private tell(ahead: Ahead): void {
    const { ws, command, outcome } = ahead;
    this.ahead.delete(keyOf(ws, command.key));
    if (outcome instanceof ShumaError) {
      this.spawner.refuse(ws, command, outcome);
      return;
    }
    if (!outcome) return;
    this.deps.toChild(ws, command.key, { type: 'SPAWNED', at: outcome.startedAt, runId: outcome.id, pid: outcome.pid });
    if (!command.firstRun.settled) command.firstRun.resolve(outcome);
    for (const event of ahead.held) this.exited(ws, command.key, event);
  }

  private reject(ahead: Ahead): void {
    this.ahead.delete(keyOf(ahead.ws, ahead.command.key));
    // Still spawning: discarded when the spawn is done (spawned()).
    if (ahead.outcome !== null) this.discard(ahead);
  }

  /** A run its actor will never know: killed, and no read of the actor waits for it to be heard. */
  private discard(ahead: Ahead): void {
    const run = ahead.outcome;
    if (!run || run instanceof ShumaError) return;
    this.orders.delete(run.id);
    if (run.alive) signalGroup(run.pid, 'SIGKILL', this.deps.logger);
    this.deps.table.hear(run);
    this.deps.logger.info({ ws: ahead.ws.id, command: ahead.command.key, run: run.id, pid: run.pid }, 'a run started ahead of its actor was not asked for; killed');
  }
}

function keyOf(ws: WorkspaceEntry, key: string): string {
  return `${ws.id}/${key}`;
}
