// `shuma up <file>`: runs a spec file in the foreground until every command and pipeline has
// ended, or SIGINT/SIGTERM stops everything; the exit code says whether all of them succeeded.
import { createRuntime } from '../create-runtime.js';
import { viewOf } from '../host/runtime-view.js';
import type { Runtime } from '../host/runtime.js';
import type { WorkspaceStats } from '../protocol/stats.js';
import type { Command } from '../host/command-handle.js';
import type { Workspace } from '../host/workspace-handle.js';
import type { ActorSnapshot } from '../protocol/actor-records.js';
import { liveView, type StatsSource } from './live-view.js';
import { OutputLines } from './output-lines.js';
import { plainView, type View } from './plain-view.js';
import type { SpecFile } from './spec-file.js';
import { stateText, type Tracked } from './tracked.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.js';

export interface UpOptions {
  inspect?: boolean;
  out?: NodeJS.WriteStream;
  /** Live view (default: when `out` is a TTY). */
  live?: boolean;
  refreshMs?: number;
  graceMs?: number;
}

type Ctx = { [key: string]: unknown };
const OUTPUT_POLL_MS = 100;
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

function commandDetail(state: string, c: Ctx): string {
  const exit = c.lastExit as { status: number; signal: string | null } | null;
  const status = exit ? (exit.signal ? `${exit.signal} (status ${exit.status})` : `status ${exit.status}`) : '';
  switch (state) {
    case 'up':
      return `pid ${String(c.pid)}; not ready until ${String((c.probe as { text?: string } | null)?.text ?? 'its probe')} says so`;
    case 'running':
      return c.probe ? `pid ${String(c.pid)}; ready: ${String(c.probeDetail ?? '')}` : `pid ${String(c.pid)}`;
    case 'ending':
      if (c.ending === 'startTimeout') return `not ready in time: ${String(c.probeDetail ?? 'no answer')}`;
      return c.ending === 'unhealthy' ? `unhealthy: ${String(c.probeDetail ?? '')}` : `restarted with its group: ${String(c.stopDetail ?? '')}`;
    case 'waiting':
      return 'waiting for its dependencies';
    case 'unmet':
      return `never started: ${String(c.dependencyDetail ?? '')}`;
    case 'backoff':
      return `${status}; relaunch in ${(num(c.backoffDeadline) ?? 0) - (num(c.stampedAt) ?? 0)} ms (restart ${(num(c.restarts) ?? 0) + 1})`;
    case 'exited':
      return status;
    case 'gaveUp':
      return `gave up after ${String(c.restarts)} restarts (${status})`;
    case 'failed':
      return (c.spawnError as { message?: string } | null)?.message ?? status;
    case 'stopped':
      return [c.stopReason ? `reason ${String(c.stopReason)}` : '', status].filter(Boolean).join('; ');
    default:
      return '';
  }
}

export async function up(spec: SpecFile, options: UpOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const refreshMs = options.refreshMs ?? 500;
  const samples = new Map<string, { stats: WorkspaceStats | null; cpu: number[] }>();
  const statsSource: StatsSource = { latest: (id) => samples.get(id) ?? { stats: null, cpu: [] } };
  const view: View = (options.live ?? out.isTTY === true) ? liveView(out, statsSource) : plainView(out);
  const actors: Array<Tracked & { snap?: () => void }> = [];
  let stopping = false;
  let errored = false;
  let wake: () => void = () => {};
  const settled = new Promise<void>((resolve) => (wake = resolve));
  /** Every command and pipeline of the file has been started: before, "all done" is only those so far. */
  let launched = false;
  const check = () => {
    const work = actors.filter((a) => a.kind !== 'workspace');
    if (stopping || (launched && work.every((a) => a.done))) wake();
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    view.event(null, `${signal}: stopping everything`);
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const rt: Runtime = await createRuntime(options.inspect ? { inspector: { port: 0 } } : {});
  if (options.inspect) view.note(`inspector: ${rt.inspectorUrl ?? '(not started)'}`);

  const follow = (actor: Tracked, snapshot: ActorSnapshot | null, detail: (state: string, c: Ctx) => string) => {
    if (!snapshot) return;
    const state = stateText(snapshot.value);
    const c = snapshot.context as Ctx;
    actor.pid = num(c.pid) ?? actor.pid;
    actor.restarts = num(c.restarts) ?? actor.restarts;
    if (actor.kind === 'workspace') {
      actor.deadline = state === 'running' ? num(c.ttlDeadline) : null;
    } else {
      actor.deadline = state === 'backoff' ? num(c.backoffDeadline) : null;
    }
    if (state !== actor.state) {
      // Its output up to now first: an exit shown after the lines that led to it.
      readOutput();
      actor.state = state;
      view.event(actor, detail(state, c));
    }
    if (actor.kind === 'command' && snapshot.status === 'done' && !actor.done) {
      actor.done = true;
      actor.ok = state === 'exited' && (c.lastExit as { status?: number } | null)?.status === 0;
      check();
    }
  };

  const refresh = async () => {
    for (const a of actors) {
      if (a.kind !== 'workspace' || a.state === 'stopped') continue;
      try {
        const s = await a.ws.stats();
        const entry = samples.get(a.ws.id) ?? { stats: null, cpu: [] };
        entry.stats = s;
        if (s.cpuPercent !== null) entry.cpu = [...entry.cpu, s.cpuPercent].slice(-10);
        samples.set(a.ws.id, entry);
      } catch {
        // the runtime is closing
      }
    }
    // A safety net for an actor that ended before its observer was added.
    for (const a of actors) if (a.kind === 'command' && !a.done) a.snap?.();
    view.refresh(actors);
  };
  const timer = setInterval(() => void refresh(), refreshMs);
  // The commands' output, prefixed by name; polled more often than the screen is redrawn.
  const output = new OutputLines(viewOf(rt), (line) => view.output(line));
  const readOutput = () => output.poll(actors.filter((a) => a.kind === 'workspace').map((a) => a.ws.id));
  const outputTimer = setInterval(readOutput, OUTPUT_POLL_MS);

  const track = (kind: Tracked['kind'], name: string, ws: Workspace): Tracked & { snap?: () => void } => {
    const actor: Tracked & { snap?: () => void } = {
      kind, name, ws, state: '', pid: null, restarts: 0, deadline: null,
      deadlineName: kind === 'workspace' ? 'ttl' : 'backoff', done: false, ok: false,
    };
    actors.push(actor);
    return actor;
  };

  try {
    for (const w of spec.workspaces) {
      if (stopping) break;
      const ws = await rt.createWorkspace(w.spec);
      const wsActor = track('workspace', ws.label, ws);
      const showWs = () => follow(wsActor, ws.getSnapshot(), (state, c) => (state === 'stopped' && c.stopReason ? `reason ${String(c.stopReason)}` : ''));
      ws.subscribe(showWs);
      showWs();
      for (const warning of ws.warnings) view.event(wsActor, `warning: ${warning}`);
      const names = w.commands.map((c, i) => `${ws.label}/${c.label ?? `${c.exec.split('/').pop()}#${i}`}`);
      const follows = (actor: Tracked & { snap?: () => void }, cmd: Command) => {
        actor.pid = cmd.pid;
        const show = () => follow(actor, cmd.getSnapshot(), commandDetail);
        actor.snap = show;
        cmd.subscribe(show);
        show();
      };
      if (w.commands.some((c) => c.dependsOn)) {
        // Declared together: dependencies may name later commands; each starts when they hold.
        const tracked = names.map((name) => track('command', name, ws));
        try {
          (await ws.runAll(w.commands)).forEach((cmd, i) => follows(tracked[i]!, cmd));
        } catch (error) {
          for (const actor of tracked.filter((a) => a.state === '')) {
            actor.state = 'failed';
            actor.done = true;
            view.event(actor, (error as Error).message);
          }
        }
      }
      for (const [i, c] of w.commands.entries()) {
        if (stopping || w.commands.some((c) => c.dependsOn)) break;
        const actor = track('command', names[i]!, ws);
        try {
          follows(actor, await ws.run(c));
        } catch (error) {
          actor.state = 'failed';
          actor.done = true;
          view.event(actor, (error as Error).message);
        }
      }
      for (const p of w.pipelines) {
        if (stopping) break;
        const actor = track('pipeline', `${ws.label}/${p.label}`, ws);
        try {
          const pipe = await rt.runPipeline({ ...p, workspace: ws.id });
          const detail = (state: string, c: Ctx) => {
            if (state === 'running') return `pids ${pipe.nodes.map((n) => `${n.label}=${n.pid}`).join(' ')}`;
            if (state === 'backoff') return `relaunch in ${(num(c.backoffDeadline) ?? 0) - (num(c.stampedAt) ?? 0)} ms (restart ${(num(c.restarts) ?? 0) + 1})`;
            return '';
          };
          const show = () => follow(actor, pipe.getSnapshot(), detail);
          pipe.subscribe(show);
          show();
          void pipe.done.then((result) => {
            show();
            actor.done = true;
            actor.ok = result.ok;
            // In node order, not in the order they ended.
            const exits = p.nodes
              .filter((n) => result.exits[n.label])
              .map((n) => `${n.label}=${result.exits[n.label]!.signal ?? result.exits[n.label]!.status}`)
              .join(' ');
            view.event(actor, `${result.ok ? 'ok' : 'not ok'}; exits ${exits}; restarts ${result.restarts}`);
            check();
          });
        } catch (error) {
          actor.state = 'failed';
          actor.done = true;
          view.event(actor, (error as Error).message);
        }
      }
    }
  } catch (error) {
    view.event(null, `error: ${(error as Error).message}`);
    errored = true;
    stopping = true;
  }
  launched = true;
  check();
  await settled;
  clearInterval(timer);
  clearInterval(outputTimer);
  // What the last commands wrote before they ended.
  readOutput();
  await rt.shutdown({ graceMs: options.graceMs ?? 1000 });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const work = actors.filter((a) => a.kind !== 'workspace');
  const failed = work.filter((a) => !a.ok);
  view.close(actors);
  view.event(null, `done: ${work.length - failed.length} of ${work.length} succeeded${failed.length ? `; not succeeded: ${failed.map((a) => a.name).join(', ')}` : ''}`);
  return failed.length === 0 && !errored ? EXIT_OK : EXIT_FAILED;
}
