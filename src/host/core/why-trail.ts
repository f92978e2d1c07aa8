import type { ActorSnapshot } from '../../protocol/actor-records.js';
import { stateName } from '../../protocol/state-value.js';

/** One link of a causal trail: what changed an actor, in words, and when. */
export interface WhyEntry {
  at: number;
  text: string;
}

const TRAIL_LENGTH = 64;
/** Trails outlive their workspace (why() after a quota kill) but not forever: the oldest go first. */
const MAX_TRAILS = 4096;

type Context = Record<string, unknown>;

/** 'backoff', 'stopping.terminating'…: the whole path of a state; '' before the first. */
function statePath(snapshot: ActorSnapshot | null): string {
  if (!snapshot) return '';
  let value: unknown = snapshot.value;
  const parts: string[] = [];
  while (typeof value === 'object' && value !== null) {
    const [key, inner] = Object.entries(value)[0] ?? [];
    if (key === undefined) break;
    parts.push(key);
    value = inner;
  }
  if (typeof value === 'string') parts.push(value);
  return parts.join('.');
}

/** The top-level state of a snapshot; '' before the first. */
function stateOf(snapshot: ActorSnapshot | null): string {
  return snapshot ? stateName(snapshot.value) : '';
}

function exitText(exit: unknown): string {
  const e = exit as { status?: number; signal?: string | null; reason?: string | null } | null;
  if (!e) return 'exited';
  const how = e.signal ? `killed by ${e.signal} (status ${e.status})` : `exited ${e.status}`;
  switch (e.reason) {
    case 'unhealthy':
      return `${how}: ended as unhealthy`;
    case 'startTimeout':
      return `${how}: ended, not ready in time`;
    case 'group':
      return `${how}: restarted with its group`;
    default:
      return how;
  }
}

/**
 * A restart whose spawn was refused (its program removed, its cwd gone…): said as such with the
 * error (code and errno in its message), as systemd's status says a failed exec — never as the
 * exit before it, which the context still holds.
 */
function refusedText(restart: unknown, error: unknown): string {
  return `restart ${String(restart)} refused: ${messageOf(error)}`;
}

/**
 * A spawn refused after a stop began (the stop came while it was in flight): the first run's
 * failure or restart N's refusal, said before `stopped` in place of an exit that never was.
 */
function refusedWhileStopping(c: Context): string {
  return Number(c.restarts ?? 0) > 0 ? refusedText(c.restarts, c.spawnError) : `spawn failed: ${messageOf(c.spawnError)}`;
}

/** A context's serialized error (or nothing) as its message. */
function messageOf(error: unknown): string {
  return String((error as { message?: string } | null)?.message ?? '');
}

/**
 * A refused restart with no backoff goes from restarting to restarting in one step (backoff is
 * passed through): the same state, one restart more.
 */
function restartedAgain(previous: ActorSnapshot | null, next: ActorSnapshot): boolean {
  return previous !== null && statePath(next) === 'restarting' && statePath(previous) === 'restarting' && previous.context.restarts !== next.context.restarts;
}

function deadlineIn(context: Context, field: string): number {
  return Number(context[field] ?? 0) - Number(context.stampedAt ?? 0);
}

/** Why an actor was told to stop, from its own context (its workspace's reason). */
export function stopCause(context: Context): string {
  switch (context.stopReason) {
    case 'quota':
      return `quota breach: ${String(context.stopDetail)} → kill`;
    case 'supervision': {
      // A named group's detail names it: `group 'db' gave up: …`.
      const detail = String(context.stopDetail);
      return detail.startsWith('group ') ? detail : `its group gave up: ${detail}`;
    }
    case 'ttl':
      return 'TTL expired';
    case 'shutdown':
      return 'runtime shutdown';
    case 'restart':
      return 'restart requested';
    case 'requested':
      return 'stop requested';
    default:
      return 'stop requested';
  }
}

/** The words for a command actor's move from one state to the next. */
function commandLines(previous: ActorSnapshot | null, next: ActorSnapshot): string[] {
  const c = next.context as Context;
  const spawned = `spawned (pid ${String(c.pid)}, run ${String(c.runId)})`;
  switch (statePath(next)) {
    case 'waiting':
      return [statePath(previous) === 'ending' ? exitText(c.lastExit) : 'waiting for its dependencies'];
    case 'up':
      return [`${spawned}; up, not ready until ${String((c.probe as { text?: string } | null)?.text ?? 'its probe')} says so`];
    case 'running':
      return statePath(previous) === 'up' ? [`ready: ${String(c.probeDetail ?? '')}`] : [spawned];
    case 'ending':
      if (c.ending === 'unhealthy') return [`unhealthy: ${String(c.probeFailures)} failed probes in a row (${String(c.probeDetail ?? '')}) → SIGTERM`];
      if (c.ending === 'startTimeout') {
        const probe = c.probe as { text?: string; startTimeoutMs?: number } | null;
        const last = c.probeDetail ? `; last probe: ${String(c.probeDetail)}` : '';
        return [`not ready within startTimeoutMs ${String(probe?.startTimeoutMs)} ms (${String(probe?.text ?? 'its probe')}${last}) → SIGTERM`];
      }
      return [`restarted by its group: ${String(c.stopDetail ?? '')} → SIGTERM`];
    case 'unmet':
      return [`never started: ${String(c.dependencyDetail ?? 'a dependency failed')}`];
    case 'backoff':
      return stateOf(previous) === 'restarting'
        ? [refusedText(c.restarts, c.spawnError), `backoff ${deadlineIn(c, 'backoffDeadline')} ms`]
        : [exitText(c.lastExit), `backoff ${deadlineIn(c, 'backoffDeadline')} ms (restart ${Number(c.restarts) + 1})`];
    case 'restarting':
      if (restartedAgain(previous, next)) return [refusedText(previous!.context.restarts, c.spawnError), `restarting (restart ${String(c.restarts)})`];
      // With no backoff the actor goes from running to restarting in one step: the exit is said too.
      return stateOf(previous) === 'running'
        ? [exitText(c.lastExit), `restarting (restart ${String(c.restarts)})`]
        : [`restarting (restart ${String(c.restarts)})`];
    case 'exited':
      return [exitText(c.lastExit)];
    case 'gaveUp':
      // From restarting: its last restart was refused (a run that exits clears spawnError as it spawns).
      return [stateOf(previous) === 'restarting' && c.spawnError ? refusedText(c.restarts, c.spawnError) : exitText(c.lastExit), `gave up after ${String(c.restarts)} restarts`];
    case 'failed':
      return [`spawn failed: ${messageOf(c.spawnError)}`];
    case 'stopping':
      return [stopCause(c)];
    case 'stopped':
      // From stopping, spawnError is set only by the spawn that was in flight as the stop came.
      if (stateOf(previous) === 'stopping') return [c.spawnError ? refusedWhileStopping(c) : exitText(c.lastExit), 'stopped'];
      return [stopCause(c), 'stopped'];
    case 'lost':
      return ['process lost across a runtime restart'];
    default:
      return [];
  }
}

function pipelineExits(c: Context): string {
  const exits = (c.exits ?? {}) as Record<string, unknown>;
  return Object.entries(exits)
    .map(([label, exit]) => `${label} ${exitText(exit)}`)
    .join(', ');
}

function pipelineLines(previous: ActorSnapshot | null, next: ActorSnapshot): string[] {
  const c = next.context as Context;
  switch (stateOf(next)) {
    case 'running':
      if (stateOf(previous) === 'splicing') {
        return [`restart ${String(c.restarts)}: ${String(c.spliceCause ?? '')}; spliced back in (what the failed node had read and not written is lost; its stdin kept what it had not read)`];
      }
      return [
        `attempt ${String(c.attempt)} spawned (${Object.keys((c.runs ?? {}) as object).join(', ')})`,
        ...(c.strategyNote && Number(c.attempt) === 0 ? [String(c.strategyNote)] : []),
      ];
    case 'splicing':
      return [`${String(c.spliceCause ?? '')} (rest_for_one)`];
    case 'reaping':
      return [`failed while others run: ${pipelineExits(c)}`];
    case 'backoff':
      return [
        stateOf(previous) === 'restarting' ? refusedText(c.restarts, c.spawnError) : `failed: ${pipelineExits(c)}`,
        `backoff ${deadlineIn(c, 'backoffDeadline')} ms (restart ${Number(c.restarts) + 1})`,
      ];
    case 'restarting':
      if (restartedAgain(previous, next)) return [refusedText(previous!.context.restarts, c.spawnError), `restarting (restart ${String(c.restarts)})`];
      // With no backoff a failed attempt goes on to restarting in one step: the failure is said too.
      return ['running', 'reaping'].includes(stateOf(previous))
        ? [`failed: ${pipelineExits(c)}`, `restarting (restart ${String(c.restarts)})`]
        : [`restarting (restart ${String(c.restarts)})`];
    case 'succeeded':
      return [`succeeded: ${pipelineExits(c)}`];
    case 'failed':
      return [c.spawnError ? `spawn failed: ${messageOf(c.spawnError)}` : `failed: ${pipelineExits(c)}`];
    case 'gaveUp':
      return [
        stateOf(previous) === 'restarting' && c.spawnError ? refusedText(c.restarts, c.spawnError) : `failed: ${pipelineExits(c)}`,
        `gave up after ${String(c.restarts)} restarts`,
      ];
    case 'stopping':
      return [stopCause(c)];
    case 'stopped':
      if (stateOf(previous) === 'stopping') return c.spawnError ? [refusedWhileStopping(c), 'stopped'] : ['stopped'];
      return [stopCause(c), 'stopped'];
    case 'lost':
      return ['processes lost across a runtime restart'];
    default:
      return [];
  }
}

/**
 * The bounded causal trail of every command and pipeline: each state change of its actor, in
 * words (`spawned`, `exited 1`, `backoff 800 ms`, `quota breach: memory → kill`…).
 */
export class WhyTrails {
  private readonly trails = new Map<string, WhyEntry[]>();
  /** Run id → the command key whose trail tells its story. */
  private readonly runs = new Map<string, string>();

  /** Lets a run's id name its command's trail. */
  alias(runId: string, key: string): void {
    this.runs.set(runId, key);
    if (this.runs.size > MAX_TRAILS * 4) this.runs.delete(this.runs.keys().next().value!);
  }

  /** The trail key a command id names: itself (a command key), or the command of a run. */
  resolve(id: string): string {
    return this.runs.get(id) ?? id;
  }

  /** Records what the move from `previous` to `next` says; nothing when the state did not change. */
  record(
    machine: 'command' | 'pipeline',
    key: string,
    previous: ActorSnapshot | null,
    next: ActorSnapshot,
    at: number,
  ): void {
    if (previous && stateOf(previous) === stateOf(next) && !restartedAgain(previous, next)) return;
    const lines = machine === 'command' ? commandLines(previous, next) : pipelineLines(previous, next);
    if (lines.length === 0) return;
    let trail = this.trails.get(key);
    if (!trail) {
      this.trails.set(key, (trail = []));
      if (this.trails.size > MAX_TRAILS) this.trails.delete(this.trails.keys().next().value!);
    }
    for (const text of lines) trail.push({ at, text });
    if (trail.length > TRAIL_LENGTH) trail.splice(0, trail.length - TRAIL_LENGTH);
  }

  get(key: string): WhyEntry[] {
    return [...(this.trails.get(key) ?? [])];
  }

  /** A command or pipeline forgotten (core/finished-forget.ts): its trail, and its runs' names for it. */
  forget(key: string, runIds: readonly string[]): void {
    this.trails.delete(key);
    for (const runId of runIds) this.runs.delete(runId);
  }

  /** A trail brought back from the snapshot file (a finished command's, after a restart). */
  restore(key: string, entries: readonly WhyEntry[]): void {
    if (!this.trails.has(key) && this.trails.size >= MAX_TRAILS) this.trails.delete(this.trails.keys().next().value!);
    this.trails.set(key, [...entries, ...(this.trails.get(key) ?? [])].slice(-TRAIL_LENGTH));
  }

}
