import type { Pipeline, PipelineResult } from '../host/pipeline-handle.js';
import type { Runtime } from '../host/runtime.js';
import type { Workspace } from '../host/workspace-handle.js';
import { validatePipelineSpec, type PipelineSpec } from '../protocol/pipeline-spec.js';
import type { WorkspaceSpec } from '../protocol/specs.js';
import type { ManualClock } from './manual-clock.js';
import { ActorWatch, processAlive, stateName } from './model-watch.js';
import { describeModelEvent, type PipelineExpectation, type PipelineModelPath } from './pipeline-model-paths.js';
import type { PipelineModelEvent } from './pipeline-model.js';
import { PuppetStage, puppetReady, type Puppet } from './puppets.js';

// Drives a real runtime with real processes along one pipeline model path (pipeline-model-paths.ts),
// checking the real actor's state after every step.


export interface RunPipelineModelOptions {
  /** The workspace each path runs in (a fresh one per path, stopped at the end). */
  workspace?: WorkspaceSpec;
  /** How long a step may take to show its expected state (default 10 000 ms). */
  timeoutMs?: number;
}

export interface PipelineModelRun {
  /** Per step: the states the real actor published on the way, in order. */
  steps: Array<{ event: PipelineModelEvent; expect: PipelineExpectation; seen: string[] }>;
  /** The pipeline's result, when the path ended it. */
  result: PipelineResult | null;
  /** Every process the path started (all gone when the run returned). */
  pids: number[];
}

/** States the real actor may pass through while a step's event takes effect. */
function passing(event: PipelineModelEvent, from: string, to: string): Set<string> {
  const allowed = new Set([from, to]);
  if (event.type === 'RUN') allowed.add('created');
  if (event.type === 'ELAPSE' && from === 'backoff') allowed.add('restarting');
  if (to === 'stopped' && (event.type === 'STOP' || from.startsWith('stopping'))) {
    allowed.add('stopping.terminating');
    allowed.add('stopping.killing');
  }
  return allowed;
}

function actual(snapshot: { value: unknown; context: Record<string, unknown> } | null): string {
  if (!snapshot) return 'no snapshot';
  const c = snapshot.context as { restarts?: number; exits?: Record<string, { status: number }>; backoffDeadline?: number | null; stampedAt?: number };
  const exits = Object.fromEntries(Object.entries(c.exits ?? {}).map(([label, exit]) => [label, exit.status]));
  const backoff = typeof c.backoffDeadline === 'number' && typeof c.stampedAt === 'number' ? c.backoffDeadline - c.stampedAt : null;
  return JSON.stringify({ state: stateName(snapshot.value as never), restarts: c.restarts, exits, backoffMs: backoff });
}

function matches(expect: PipelineExpectation, snapshot: { value: unknown; context: Record<string, unknown> } | null): boolean {
  if (!snapshot || stateName(snapshot.value as never) !== expect.state) return false;
  const c = snapshot.context as { restarts?: number; exits?: Record<string, { status: number }>; backoffDeadline?: number | null; stampedAt?: number };
  if (c.restarts !== expect.restarts) return false;
  if (expect.exits) {
    const exits = c.exits ?? {};
    const labels = Object.keys(exits);
    if (labels.length !== Object.keys(expect.exits).length) return false;
    if (!labels.every((label) => exits[label]!.status === expect.exits![label])) return false;
  }
  if (expect.backoffMs !== null && (c.backoffDeadline ?? NaN) - (c.stampedAt ?? NaN) !== expect.backoffMs) return false;
  return true;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const FINAL = new Set(['succeeded', 'failed', 'gaveUp', 'stopped']);

/**
 * Drives `rt` along one model path with real processes (puppets in place of the nodes'
 * programs) and checks the pipeline actor after every step: its state, restarts, the exit
 * status of every node that ended, the backoff armed; every state it published on the way must
 * be one the step allows. `rt` must run on `clock` (`createRuntime({ clock })`), and nothing
 * else may move that clock meanwhile. Rejects with the step, what was expected and what the actor
 * showed. Every process the path started is gone when it settles.
 */
export async function runPipelineModelPath(
  rt: Runtime,
  clock: ManualClock,
  spec: PipelineSpec,
  path: PipelineModelPath,
  options: RunPipelineModelOptions = {},
): Promise<PipelineModelRun> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const checked = validatePipelineSpec(structuredClone(spec));
  const stage = await PuppetStage.create('shuma-model-');
  const pids = new Set<number>();
  const run: PipelineModelRun = { steps: [], result: null, pids: [] };
  let watch: ActorWatch | null = null;
  let pipeline: Pipeline | null = null;
  const pending: Array<Promise<unknown>> = [];
  let failure: unknown = null;
  let ws: Workspace;
  try {
    ws = await rt.createWorkspace(options.workspace ?? { label: `model ${checked.label}` });
  } catch (error) {
    await stage.close();
    throw error;
  }
  try {
    const puppets = new Map<string, Puppet>();
    for (const [i, node] of checked.nodes.entries()) puppets.set(node.label, await stage.puppet(`node${i}`));
    const puppetSpec: PipelineSpec = {
      ...checked,
      workspace: ws.id,
      nodes: checked.nodes.map((node) => ({ label: node.label, exec: puppets.get(node.label)!.exec, argv: puppets.get(node.label)!.argv })),
    };
    const puppet = (label: string) => {
      const found = puppets.get(label);
      if (!found) throw new Error(`the path names a node '${label}' that the spec does not have`);
      return found;
    };
    const pidOf = (label: string) => {
      const node = pipeline?.nodes.find((n) => n.label === label);
      if (!node) throw new Error(`node '${label}' has no process in the current attempt`);
      return node.pid;
    };
    const ready = new Set<number>();
    // Every process of the current attempt is past its `trap` before the test acts again.
    const settle = async () => {
      for (const node of pipeline?.nodes ?? []) {
        pids.add(node.pid);
        if (!ready.has(node.pid)) {
          await puppetReady(node.pid, timeoutMs);
          ready.add(node.pid);
        }
      }
    };

    let previous: PipelineExpectation = { state: '', started: true, restarts: 0, exits: null, backoffMs: null };
    for (const [index, step] of path.steps.entries()) {
      const where = () => `step ${index + 1} of [${path.name}] (${describeModelEvent(step.event)})`;
      if (watch) {
        // The actor stayed where the previous step left it.
        const between = watch.takeSeen().filter((state) => state !== previous.state);
        if (between.length > 0 || !matches(previous, watch.snapshot as never)) {
          throw new Error(`before ${where()}: the actor left ${previous.state} on its own: saw ${between.join(' → ')}, now ${actual(watch.snapshot as never)}`);
        }
      }
      const { event, expect } = step;
      switch (event.type) {
        case 'RUN':
          try {
            pipeline = await rt.runPipeline(puppetSpec);
          } catch (error) {
            if (expect.started) throw error;
            const code = (error as { code?: unknown }).code;
            if (code !== 'SPAWN_FAILED') throw new Error(`${where()}: run() failed with ${String(code)}, expected SPAWN_FAILED`);
            run.steps.push({ event, expect, seen: [] });
            previous = expect;
            continue;
          }
          if (!expect.started) throw new Error(`${where()}: run() started the pipeline; the model expected it refused`);
          watch = new ActorWatch(pipeline);
          break;
        case 'EXIT':
          puppet(event.node).exit(event.code);
          break;
        case 'KILL':
          process.kill(pidOf(event.node), 'SIGKILL');
          break;
        case 'SIGPIPE':
          process.kill(pidOf(event.node), 'SIGPIPE');
          break;
        case 'TICK':
        case 'ELAPSE':
          await clock.advance(event.ms);
          break;
        case 'STOP':
          if (!pipeline) throw new Error(`${where()}: no pipeline to stop`);
          pending.push(pipeline.stop({ graceMs: event.graceMs }));
          break;
        case 'BREAK':
          await puppet(event.node).break();
          break;
        case 'REPAIR':
          await puppet(event.node).repair();
          break;
      }
      if (!watch) {
        // Before the run there is no actor to watch: only the programs can change.
        if (event.type !== 'BREAK' && event.type !== 'REPAIR') throw new Error(`${where()}: no pipeline yet: RUN first`);
        run.steps.push({ event, expect, seen: [] });
        previous = expect;
        continue;
      }
      const w = watch;
      await w.until(
        (snapshot) => matches(expect, snapshot as never),
        () => `${where()}: expected ${JSON.stringify(expect)}; the actor shows ${actual(w.snapshot as never)}`,
        timeoutMs,
      );
      await settle();
      const seen = w.takeSeen();
      const allowed = passing(event, previous.state, expect.state);
      const stray = seen.filter((state) => !allowed.has(state));
      if (stray.length > 0) {
        throw new Error(`${where()}: on the way from ${previous.state || 'nothing'} to ${expect.state} the actor passed ${stray.join(', ')} (saw ${seen.join(' → ')})`);
      }
      run.steps.push({ event, expect, seen });
      previous = expect;
      if (FINAL.has(expect.state) && pipeline) {
        const result = await withTimeout(pipeline.done, timeoutMs, `${where()}: pipeline.done`);
        run.result = result;
        if (result.state !== expect.state || result.restarts !== expect.restarts || result.ok !== (expect.state === 'succeeded')) {
          throw new Error(`${where()}: pipeline.done gave ${JSON.stringify(result)}; expected state ${expect.state}, restarts ${expect.restarts}`);
        }
      }
    }
  } catch (error) {
    failure = error;
  } finally {
    watch?.close();
    // Whatever the path left running goes with its workspace.
    try {
      if (rt.workspace(ws.id)) await withTimeout(ws.stop({ graceMs: 0 }), timeoutMs, 'the workspace to stop');
      await withTimeout(Promise.allSettled(pending), timeoutMs, 'the stops of the path');
    } catch (error) {
      failure ??= error;
    }
    await stage.close();
  }
  if (failure) throw failure;
  run.pids = [...pids];
  for (const pid of run.pids) {
    if (await processAlive(pid)) throw new Error(`process ${pid} of [${path.name}] is still alive after its workspace stopped`);
  }
  return run;
}
