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
//
// A run started ahead carries its order too: if it exits before its actor has asked for it (a
// crash loop whose program dies faster than the worker answers), the run after it starts there
// and then as well, up to MAX_AHEAD runs ahead of the actor, instead of waiting for the actor's
// round trip (which made the restart's p95, s24). The actor is told after the fact, in order:
// each run's SPAWNED when it asks for it, then that run's exit, then (it asks again) the next.
//
// Where the spawner can (the native one: native/relaunch.c), a run carrying an order is armed
// with its relaunch as the order is given: the run's exit is watched on the spawner's own
// thread, which starts the next run the moment it sees the exit — no wake-up of the loop, no
// JavaScript before the clone (the restart's tail: the loop woken by the exit, then the spawner
// thread by the loop, each late by a scheduler's delay on a busy machine). The loop then hears
// the exit as always, and relaunch() takes the run already started instead of spawning it
// (spawnAhead's `after`). Everything that would keep relaunch() from relaunching disarms it
// first (a revoke, a stop of the command or of its workspace, a discard), or is known when the
// order is given (the restart budget, the bound on runs ahead); a run started all the same (the
// exit came first) is killed unheard, as a run ahead never asked for is.

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
  /** Its exit, when it came before the actor asked and started no run after it. */
  held: ChildEvent[];
  /** The exit that set it off, told to the actor once this run's spawn is done and the runs before it were told (or at a stop). */
  untold: ChildEvent | null;
  /** Cut from its chain: killed once spawned, never told. */
  dropped: boolean;
}

/**
 * How many runs may be started ahead of one actor. A crash loop runs ~1.5 ms a cycle and the
 * worker answers in ~0.3-1 ms, so one or two are ahead at a time; the bound is for a worker
 * that does not answer (busy, or dying: its actors are re-hosted), so that the host, past a few
 * runs, waits for the actor as it did before.
 */
const MAX_AHEAD = 8;

/** What the host actor lends the orders: starting a run, and telling a refusal as it tells its own. */
export interface AheadSpawner {
  /** Spawns for `command` with `restarts`; `done` is called, as a host message, with the run or why not. `after`: the run whose exit sets it off (armed: started already). */
  spawnAhead(ws: WorkspaceEntry, command: CommandEntry, restarts: number, done: (result: RunEntry | ShumaError) => void, after?: RunEntry): void;
  /** `run`'s relaunch is started by the spawner at its exit, when `always` or it failed (Spawner.armRelaunch). */
  arm(ws: WorkspaceEntry, command: CommandEntry, run: RunEntry, always: boolean): void;
  disarm(run: RunEntry): void;
  refuse(ws: WorkspaceEntry, command: CommandEntry, error: ShumaError): void;
}

export class StandingOrders {
  /** The order each run carries, by run id, until it exits or is revoked. */
  private readonly orders = new Map<string, RelaunchOrder>();
  /** The runs started ahead of each command's actor, by `wsId/key`, in the order the actor will ask for them. */
  private readonly chains = new Map<string, Ahead[]>();
  /** Runs killed before their actor knew them, until their exit comes: it is not told either. */
  private readonly unknown = new Set<string>();
  /** Commands told to stop whose actor has not ended yet: no order of theirs stands. */
  private readonly stopping = new WeakSet<CommandEntry>();

  constructor(
    private readonly deps: HostActorDeps,
    private readonly spawner: AheadSpawner,
  ) {}

  /** A run was spawned at its actor's request carrying this order. */
  give(ws: WorkspaceEntry, command: CommandEntry, run: RunEntry, order: RelaunchOrder | undefined): void {
    if (!order || this.deps.spawner.actsAhead !== true || this.stopping.has(command)) return;
    this.orders.set(run.id, order);
    // Armed only where relaunch() will relaunch, whatever comes before the exit (else disarmed then).
    const mayRestart = order.maxRestarts === 0 || run.restarts < order.maxRestarts;
    const chain = this.chains.get(keyOf(ws, command.key));
    if (mayRestart && !ws.hostStop && (chain?.length ?? 0) < MAX_AHEAD && (chain?.at(-1)?.outcome ?? run) === run) {
      this.spawner.arm(ws, command, run, order.always);
    }
  }

  /** Its actor is told to stop (STOP sent now): nothing relaunches it ahead any more. */
  stop(ws: WorkspaceEntry, command: CommandEntry): void {
    this.stopping.add(command);
    for (const run of this.deps.table.ofWorkspace(ws.id)) if (run.key === command.key) this.withdraw(run.id);
    // The first run ahead is still asked for (the exit before it reaches the actor before the stop), without an order; those after it never are.
    const chain = this.chains.get(keyOf(ws, command.key));
    if (!chain) return;
    this.cut(chain, 1);
    const ahead = chain[0]!;
    ahead.order = undefined;
    // Its exit, if still untold, goes now: the actor hears it before the stop, as without the relaunch.
    if (ahead.command === command) this.tellExit(ahead);
  }

  /** The actor will end this run itself: no relaunch ahead of it. */
  revoke(runId: string): void {
    this.withdraw(runId);
  }

  /** The workspace begins stopping: nothing may start at an exit any more (relaunch() refuses, and the spawner must not go first). */
  workspaceStopping(ws: WorkspaceEntry): void {
    for (const run of this.deps.table.ofWorkspace(ws.id)) if (this.orders.has(run.id)) this.spawner.disarm(run);
  }

  /**
   * The actor asks for run `restarts`: true when it was started ahead (the answer is told now,
   * or once its spawn is done); false to spawn as usual.
   */
  asked(ws: WorkspaceEntry, command: CommandEntry, restarts: number, relaunch: RelaunchOrder | undefined): boolean {
    const chain = this.chains.get(keyOf(ws, command.key));
    const ahead = chain?.[0];
    if (!chain || !ahead) return false;
    if (ahead.command !== command || ahead.ws !== ws || ahead.restarts !== restarts) {
      this.cut(chain, 0);
      return false;
    }
    ahead.asked = true;
    if (ahead.after === null) {
      ahead.order = relaunch;
      if (ahead.outcome && !(ahead.outcome instanceof ShumaError)) this.give(ws, command, ahead.outcome, relaunch);
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
    if (this.deps.spawner.actsAhead !== true || ws.hostStop || this.chains.has(keyOf(ws, command.key))) return;
    const ahead: Ahead = { ws, command, order: undefined, restarts: 0, after: null, asked: false, outcome: null, held: [], untold: null, dropped: false };
    this.chains.set(keyOf(ws, command.key), [ahead]);
    queueMicrotask(() => this.spawner.spawnAhead(ws, command, 0, (result) => this.spawned(ahead, result)));
  }

  /** Every command exit the reaper tells goes through here: a held run's waits, an ordered one relaunches. */
  exited(ws: WorkspaceEntry, key: string, event: ChildEvent): void {
    if (event.type !== 'EXITED') {
      this.deps.toChild(ws, key, event);
      return;
    }
    if (this.unknown.delete(event.runId)) return;
    const chain = this.chains.get(keyOf(ws, key));
    const index = chain?.findIndex((ahead) => !ahead.asked && ahead.outcome !== null && !(ahead.outcome instanceof ShumaError) && ahead.outcome.id === event.runId) ?? -1;
    if (chain && index >= 0) {
      // Its workspace stops before its actor asked (or ever existed): it never will.
      if (ws.hostStop) this.cut(chain, index);
      // Not told yet: its exit waits for its SPAWNED; the run after it may start now all the same.
      else if (!this.relaunch(ws, key, event)) chain[index]!.held.push(event);
      return;
    }
    // Relaunched on its order: the exit is told once the next run has started (spawned()).
    if (!this.relaunch(ws, key, event)) this.deps.toChild(ws, key, event);
  }

  /** The command actor's mirror moved: an actor that heard the exit and did not ask never will. */
  moved(ws: WorkspaceEntry, command: CommandEntry, snapshot: ActorSnapshot): void {
    // Its last request came before this (a request is sent before the snapshot of the step that made it).
    if (snapshot.status !== 'active') this.stopping.delete(command);
    const chain = this.chains.get(keyOf(ws, command.key));
    const ahead = chain?.[0];
    if (!chain || !ahead || ahead.asked) return;
    if (ahead.command !== command) {
      this.cut(chain, 0);
      return;
    }
    const run = ahead.outcome instanceof ShumaError ? null : ahead.outcome;
    // Told of it another way (re-hosted after its thread died: the process table is told again).
    if (run && runIdOf(snapshot) === run.id) {
      this.next(chain);
      return;
    }
    // A request is sent before the snapshot of the step that made it: one still to come is not.
    // A new actor's first snapshot (`starting`) may come before its first request.
    const state = stateName(snapshot.value);
    const asking = ahead.after === null
      ? state === 'waiting' || state === 'starting'
      : state === 'restarting' && snapshot.context.restarts === ahead.restarts;
    if (snapshot.status !== 'active' || (!asking && (ahead.after === null || hasHeardExitOf(snapshot, ahead.after)))) this.cut(chain, 0);
  }

  /** True when the next run is being started on the run's order (the exit is then told after it). */
  private relaunch(ws: WorkspaceEntry, key: string, event: ChildEvent & { type: 'EXITED' }): boolean {
    const order = this.orders.get(event.runId);
    if (!order) return false;
    const run = this.deps.table.get(event.runId);
    let chain = this.chains.get(keyOf(ws, key));
    // Only after the last run ahead (or the actor's own, with none ahead); past the bound, the order waits until its run is told.
    const last = chain?.at(-1)?.outcome;
    if (chain && (last !== run || chain.length >= MAX_AHEAD)) return false;
    this.orders.delete(event.runId);
    const command = ws.commands.get(key);
    // The actor's own guards, as they will read: `relaunches` and `mayRestart` (machines/command-setup.ts).
    const relaunches = order.always || event.status !== 0;
    const mayRestart = run !== undefined && (order.maxRestarts === 0 || run.restarts < order.maxRestarts);
    if (!run || !command || !relaunches || !mayRestart || ws.hostStop || this.deps.registry.get(ws.id) !== ws) return false;
    const ahead: Ahead = { ws, command, order, restarts: run.restarts + 1, after: run.id, asked: false, outcome: null, held: [], untold: event, dropped: false };
    if (!chain) this.chains.set(keyOf(ws, key), (chain = []));
    chain.push(ahead);
    this.spawner.spawnAhead(ws, command, ahead.restarts, (result) => this.spawned(ahead, result), run);
    return true;
  }

  /** The run's order stands no more, nor what the spawner was to start at its exit. */
  private withdraw(runId: string): void {
    if (!this.orders.delete(runId)) return;
    const run = this.deps.table.get(runId);
    if (run) this.spawner.disarm(run);
  }

  /** The exit that set `ahead` off reaches its actor (once). */
  private tellExit(ahead: Ahead): void {
    const event = ahead.untold;
    if (!event) return;
    ahead.untold = null;
    this.deps.toChild(ahead.ws, ahead.command.key, event);
  }

  private spawned(ahead: Ahead, result: RunEntry | ShumaError): void {
    ahead.outcome = result;
    if (!(result instanceof ShumaError)) this.give(ahead.ws, ahead.command, result, ahead.order);
    if (ahead.dropped) {
      this.discard(ahead);
      return;
    }
    // The first run ahead: the exit before it is told now. A later one's waits until the runs before it were told (next()).
    if (this.chains.get(keyOf(ahead.ws, ahead.command.key))?.[0] !== ahead) return;
    this.tellExit(ahead);
    if (ahead.asked) this.tell(ahead);
  }

  /** The actor asked and the spawn is done: it hears the answer it would have heard, then what followed. */
  private tell(ahead: Ahead): void {
    const { ws, command, outcome } = ahead;
    const chain = this.chains.get(keyOf(ws, command.key));
    if (!chain || !outcome) return;
    if (outcome instanceof ShumaError) {
      // A run refused has no exit: nothing started after it.
      this.next(chain);
      this.spawner.refuse(ws, command, outcome);
      return;
    }
    this.deps.toChild(ws, command.key, { type: 'SPAWNED', at: outcome.startedAt, runId: outcome.id, pid: outcome.pid });
    if (!command.firstRun.settled) command.firstRun.resolve(outcome);
    // Its exit: held (it started nothing) and told now, or the one the next run ahead tells once spawned.
    const held = ahead.held.splice(0);
    this.next(chain);
    for (const event of held) this.exited(ws, command.key, event);
  }

  /** The first run ahead is told (or known another way): the next one's turn, whose untold exit goes as soon as it has started. */
  private next(chain: Ahead[]): void {
    const told = chain.shift();
    if (told && chain.length === 0) this.chains.delete(keyOf(told.ws, told.command.key));
    const ahead = chain[0];
    if (ahead && ahead.outcome !== null) this.tellExit(ahead);
  }

  /**
   * The runs ahead from `from` on will not be asked for: each is killed (once spawned) and never
   * told. The exit before the first of them is still the actor's to hear: told now (`from` 0: the
   * actor's own run), or after its run's SPAWNED (held by the run before).
   */
  private cut(chain: Ahead[], from: number): void {
    const dropped = chain.splice(from);
    const first = dropped[0];
    if (!first) return;
    if (chain.length === 0) this.chains.delete(keyOf(first.ws, first.command.key));
    if (from === 0) this.tellExit(first);
    else if (first.untold) chain[from - 1]!.held.push(first.untold);
    for (const ahead of dropped) {
      ahead.untold = null;
      ahead.dropped = true;
      // Still spawning: discarded when the spawn is done (spawned()).
      if (ahead.outcome !== null) this.discard(ahead);
    }
  }

  /** A run its actor will never know: killed, and no read of the actor waits for it to be heard. */
  private discard(ahead: Ahead): void {
    const run = ahead.outcome;
    if (!run || run instanceof ShumaError) return;
    this.withdraw(run.id);
    if (run.alive) {
      signalGroup(run.pid, 'SIGKILL', this.deps.logger);
      this.unknown.add(run.id);
    }
    this.deps.table.hear(run);
    this.deps.logger.info({ ws: ahead.ws.id, command: ahead.command.key, run: run.id, pid: run.pid }, 'a run started ahead of its actor was not asked for; killed');
  }
}

function keyOf(ws: WorkspaceEntry, key: string): string {
  return `${ws.id}/${key}`;
}
