// The daemon's side of `shuma ps` and `shuma stats`: rows as `ps` shows them, read from the
// registry (the command actors' states) and the process table (pids, exits, restarts).
import type { PipelineView, RunView, RuntimeView, WorkspaceView } from '../host/runtime-view.js';
import type { StatsRequest } from '../protocol/control.js';
import type { CommandRow, PipelineRow, PsResult, StatsEvent } from '../protocol/control-results.js';
import { commandsOfWorkspace, resolveWorkspace } from './names.js';
import type { ServeContext, Streamed } from './serve-context.js';
import { stateText } from './tracked.js';
import { groupsGivenUp } from '../machines/group-supervisors.js';

export function commandRows(core: RuntimeView, ws: WorkspaceView): CommandRow[] {
  const latest = new Map<string, RunView>();
  for (const run of core.table.ofWorkspace(ws.id)) latest.set(run.key, run);
  return commandsOfWorkspace(core, ws).map(({ key, label }) => {
    const run = latest.get(key);
    const snapshot = ws.commands.get(key)?.snapshot;
    const state = snapshot ? stateText(snapshot.value) : run?.alive ? 'running' : 'exited';
    const restartAt = state === 'backoff' ? Number(snapshot?.context.backoffDeadline ?? 0) || null : null;
    return {
      id: run?.id ?? null,
      commandKey: key,
      label,
      state,
      // A dead process's pid names nothing (and may soon name a stranger): none is shown.
      pid: run?.alive ? run.pid : null,
      alive: run?.alive ?? false,
      restartAt,
      exitStatus: run?.exit?.status ?? null,
      exitSignal: run?.exit?.signal ?? null,
      restarts: run?.restarts ?? 0,
      startedAt: run?.startedAt ?? null,
      logBytes: run ? run.stdout.total + run.stderr.total : 0,
      ...(run?.node !== undefined ? { node: run.node } : {}),
    };
  });
}

function pipelineRow(core: RuntimeView, p: PipelineView): PipelineRow {
  const ws = core.registry.get(p.wsId);
  return {
    id: p.id,
    label: p.label,
    workspace: { id: p.wsId, label: ws?.label ?? '' },
    state: p.snapshot ? stateText(p.snapshot.value) : 'created',
    nodes: p.currentRuns.map((run) => ({
      label: run.label,
      pid: run.pid,
      commandId: run.id,
      alive: run.alive,
      exitStatus: run.exit?.status ?? null,
      exitSignal: run.exit?.signal ?? null,
    })),
  };
}

export function ps({ core }: ServeContext): PsResult {
  core.ensureOpen();
  const now = core.clock.now();
  return {
    workspaces: [...core.registry.all()].map((ws) => ({
      id: ws.id,
      label: ws.label,
      state: core.stateOf(ws),
      uptimeMs: now - ws.createdAt,
      commands: commandRows(core, ws),
      ...withGivenUp(ws.snapshot?.context),
    })),
    pipelines: [...core.pipelines.values()].map((p) => pipelineRow(core, p)),
  };
}

async function sampleAll({ rt, core }: ServeContext, only: WorkspaceView | undefined): Promise<StatsEvent> {
  const list = only ? [only] : [...core.registry.all()];
  const workspaces = await Promise.all(
    list.map(async (ws) => ({
      id: ws.id,
      label: ws.label,
      state: core.stateOf(ws),
      // A workspace that stopped meanwhile has no sample: its row says so.
      stats: await (rt.workspace(ws.id)?.stats() ?? Promise.resolve(null)).catch(() => null),
      commands: commandRows(core, ws),
    })),
  );
  return { at: Date.now(), workspaces };
}

export function stats(ctx: ServeContext, request: StatsRequest): Streamed | Promise<Streamed> {
  const { core } = ctx;
  core.ensureOpen();
  const only = request.workspace === undefined ? undefined : resolveWorkspace(core, request.workspace);
  if (request.everyMs === undefined) return sampleAll(ctx, only).then((result) => ({ result }));
  const everyMs = request.everyMs;
  return {
    stream: (emit, end) => {
      let busy = false;
      const tick = () => {
        if (busy) return; // a slow sample is not queued behind itself
        busy = true;
        if (only && !core.registry.get(only.id)) {
          end({ ended: `workspace ${only.label} stopped` });
          return;
        }
        void sampleAll(ctx, only).then(emit, () => undefined).finally(() => (busy = false));
      };
      tick();
      const timer = setInterval(tick, everyMs);
      return () => clearInterval(timer);
    },
  };
}

/** A workspace row's `gaveUp`, only when some group of it gave up. */
function withGivenUp(context: unknown): { gaveUp?: string[] } {
  const gaveUp = groupsGivenUp(context);
  return gaveUp.length > 0 ? { gaveUp } : {};
}
