// The daemon's side of `shuma logs`: a command's output from its files (every run, across
// relaunches and daemon restarts) or, for `-f` and pipeline nodes, from the in-memory rings.
import type { LogView, RunView } from '../host/runtime-view.js';
import type { LogsRequest } from '../protocol/control.js';
import { lastLines } from '../protocol/log-lines.js';
import { resolveCommand, runsOf, type CommandRef } from './names.js';
import type { ServeContext, Streamed } from './serve-context.js';
import { stateText } from './tracked.js';

/** How often `logs -f` looks for new output: the rings have no event of their own. */
const FOLLOW_POLL_MS = 50;

export function logs({ rt, core }: ServeContext, request: LogsRequest): Streamed | Promise<Streamed> {
  core.ensureOpen();
  const ref = resolveCommand(core, request.command);
  const latest = runsOf(core, ref).at(-1);
  const rings = (run: RunView) =>
    request.stream === 'both' ? [run.stdout, run.stderr] : [request.stream === 'stdout' ? run.stdout : run.stderr];
  const tail = request.tailBytes ?? 0;
  const lines = request.lines;
  const cut = (data: Buffer, ring: LogView) => (lines === undefined ? data : lastLines(data, lines, ring.total > data.length));
  const now = latest ? Buffer.concat(rings(latest).map((ring) => cut(ring.tail(tail), ring))) : Buffer.alloc(0);
  const command = { id: latest?.id ?? ref.key, label: ref.label, workspace: ref.ws.label };
  const query = { stream: request.stream, tailBytes: tail, ...(lines === undefined ? {} : { lines }) };
  if (!request.follow && !ref.pipeline) {
    // Every run of the command, from its files when the daemon keeps them: across relaunches and restarts.
    return rt.workspace(ref.ws.id)!.logs(ref.key, query).then((data) => ({ result: { command, data } }));
  }
  if (!request.follow) {
    // A node's latest run: its ring, or its files when the ring was lost with a daemon restart.
    if (!latest) return { result: { command, data: now } };
    return rt.workspace(ref.ws.id)!.logs(latest.id, query).then((data) => ({ result: { command, data } }));
  }
  // What is there already: the latest run's ring (what follows is counted from it), or, when the
  // daemon restarted since that run (no ring), its files.
  const ringLost = latest !== undefined && latest.stdout.keptBytes === 0 && latest.stderr.keptBytes === 0 && !latest.alive;
  const before = ringLost ? rt.workspace(ref.ws.id)!.logs(ref.pipeline ? latest!.id : ref.key, query) : Promise.resolve(now);
  return before.then((first) => follow(core, ref, latest, first, rings));
}

/** `logs -f`: the rings polled, a relaunch followed (a restart of the command included). */
function follow(
  core: ServeContext['core'],
  ref: CommandRef,
  latest: RunView | undefined,
  first: Buffer,
  rings: (run: RunView) => LogView[],
): Streamed {
  return {
    stream: (emit, end) => {
      emit({ run: latest ? { id: latest.id, pid: latest.pid } : null, data: first });
      let run = latest;
      let seen = run ? rings(run).map((ring) => ring.total) : [];
      const poll = () => {
        const current = runsOf(core, ref).at(-1);
        if (current && current !== run) {
          // A relaunch: what the old run wrote last, then the new one from its start.
          if (run) send(run);
          run = current;
          seen = rings(run).map(() => 0);
          emit({ run: { id: run.id, pid: run.pid } });
        }
        if (run) send(run);
        if (!core.registry.get(ref.ws.id)) end({ ended: `workspace ${ref.ws.label} stopped` });
        else if (run && !run.alive && run.outputEnded && isFinal(core, ref)) end({ ended: 'the command ended' });
      };
      const send = (from: RunView) => {
        rings(from).forEach((ring, i) => {
          const fresh = ring.total - seen[i]!;
          if (fresh <= 0) return;
          seen[i] = ring.total;
          const kept = Math.min(fresh, ring.keptBytes);
          emit({ data: ring.tail(kept), ...(kept < fresh ? { skipped: fresh - kept } : {}) });
        });
      };
      const timer = setInterval(poll, FOLLOW_POLL_MS);
      return () => clearInterval(timer);
    },
  };
}

/** A command that will not run again: exited, gave up, stopped, failed (or a pipeline node). */
function isFinal(core: ServeContext['core'], ref: CommandRef): boolean {
  if (ref.pipeline) return ref.pipeline.done.settled;
  const snapshot = ref.ws.commands.get(ref.key)?.snapshot;
  if (!snapshot) return !runsOf(core, ref).some((run) => run.alive);
  // Stopped to be run again (`shuma restart`, apply): its next run follows.
  if (stateText(snapshot.value) === 'stopped' && snapshot.context.stopReason === 'restart') return false;
  return snapshot.status === 'done' || ['exited', 'gaveUp', 'stopped', 'failed', 'lost'].includes(stateText(snapshot.value));
}
