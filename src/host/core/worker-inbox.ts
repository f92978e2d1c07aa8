import { serializeError } from '../../protocol/errors.js';
import type { ActorSnapshot, PlainValue } from '../../protocol/actor-records.js';
import type { HostRequest } from '../../protocol/host-requests.js';
import type { FromWorker } from '../../protocol/worker-messages.js';
import { mergePersisted } from '../../protocol/persisted-delta.js';
import { stateName } from '../../protocol/state-value.js';
import { hasHeardExitOf, runIdOf } from '../../machines/command-runs.js';
import type { CommandEntry, PipelineEntry, WorkspaceEntry } from '../registry/registry.js';
import { settlePipeline } from './commands-and-pipelines.js';
import { mirrorMoved } from './caught-up.js';
import { settleFirstRun } from './first-run.js';
import { internPersisted, internWorkspaceSnapshot, withMirroredContext } from './shared-context.js';
import type { CoreParts } from './core-parts.js';
import { finish, onActorError } from './workspace-lifecycle.js';
import { noteBreachLogged } from './orders-in-flight.js';

// Everything the worker threads send, handled on the main thread: the actors' requests (routed
// to the placement of their workspace), and the mirror of every actor's snapshot that the
// handles, why() and the snapshot file read.

/** Whatever a message's handling meets (EMFILE, ENOMEM…) is reported, never thrown into the pool's port. */
export function receiveGuarded(core: CoreParts, message: FromWorker): void {
  try {
    receiveFromWorker(core, message);
  } catch (error) {
    const wsId = 'wsId' in message ? message.wsId : undefined;
    core.logger.error({ ws: wsId, message: message.type, err: serializeError(error) }, 'handling a message from an actor failed');
    core.warn(`handling '${message.type}'${wsId ? ` for workspace ${wsId}` : ''} failed (${(error as Error).message}): see the log`);
  }
}

export function receiveFromWorker(core: CoreParts, message: FromWorker): void {
  // What a workspace's actor says may change what the snapshot holds of it (its mirror, trails).
  if ('wsId' in message) {
    const ws = core.registry.get(message.wsId);
    if (ws) ws.changes++;
  }
  switch (message.type) {
    case 'hostRequest':
      serveRequest(core, message.request);
      return;
    case 'snapshot': {
      const ws = core.registry.get(message.wsId);
      if (ws) onWorkspaceSnapshot(core, ws, ws.stopRequested ? message.snapshot : internWorkspaceSnapshot(ws, message.snapshot));
      return;
    }
    case 'childSnapshot': {
      const ws = core.registry.get(message.wsId);
      if (!ws) return;
      if (message.machine === 'pipeline') {
        const pipeline = ws.pipelines.get(message.key);
        if (!pipeline) return;
        core.why.record('pipeline', pipeline.id, pipeline.snapshot, message.snapshot, core.clock.now());
        onPipelineSnapshot(core, pipeline, message.snapshot);
        return;
      }
      const command = ws.commands.get(message.key);
      if (command) onCommandSnapshot(core, command, message.snapshot);
      return;
    }
    case 'persisted': {
      const ws = core.registry.get(message.wsId);
      if (!ws) return;
      // A stopping workspace's mirror is short-lived: not worth comparing.
      const persisted = mergePersisted(ws.persisted, message, ws.snapshot?.context);
      ws.persisted = ws.stopRequested ? persisted : internPersisted(withMirroredContext(persisted, ws.snapshot));
      core.state?.markDirty(ws);
      return;
    }
    case 'persistedChild': {
      const ws = core.registry.get(message.wsId);
      const children = (ws?.persisted as { children?: Record<string, { snapshot: PlainValue } | undefined> } | null)?.children;
      const entry = children?.[message.key];
      // A child is always in a whole snapshot before any of its own is sent.
      if (!entry) return;
      entry.snapshot = message.snapshot;
      core.state?.markDirty(ws);
      return;
    }
    case 'actorError': {
      const ws = core.registry.get(message.wsId);
      if (ws) onActorError(core, ws, message.error);
      return;
    }
    case 'inspection':
      for (const observer of core.inspectors) core.notify(observer, message.record);
      return;
    case 'clockAck':
      core.clocks.acknowledged(message.seq);
      return;
  }
}

/** An actor's request, served by the placement of its workspace (the machines never know which). */
export function serveRequest(core: CoreParts, request: HostRequest): void {
  if (request.type === 'log') {
    core.logger[request.level](request.fields, request.msg);
    const ws = request.breach && core.registry.get(request.breach.wsId);
    if (ws) noteBreachLogged(ws, request.breach!.resource);
    return;
  }
  const ws = core.registry.get(request.wsId);
  if (!ws) return;
  ws.changes++;
  const placement = core.placementOf(ws);
  switch (request.type) {
    case 'spawn': {
      const command = ws.commands.get(request.key);
      if (command) placement.spawnCommand(ws, command, request.restarts, request.relaunch);
      return;
    }
    case 'spawnPipeline': {
      const pipeline = ws.pipelines.get(request.pipelineId);
      if (pipeline) placement.spawnPipeline(ws, pipeline, request.attempt, request.nodes);
      return;
    }
    case 'releasePipelineInput': {
      const pipeline = ws.pipelines.get(request.pipelineId);
      if (pipeline) placement.releasePipelineInput?.(pipeline, request.label);
      return;
    }
    case 'signal':
      if (request.waves && request.signal === 'SIGTERM' && placement.signalInWaves) placement.signalInWaves(ws, request.waves);
      else placement.signal(ws, request.signal);
      return;
    case 'probe':
      core.probes.probe(request);
      return;
    case 'signalPipeline': {
      const pipeline = ws.pipelines.get(request.pipelineId);
      if (pipeline) placement.signal(pipeline, request.signal);
      return;
    }
    case 'signalRun': {
      // Its exit is told as unhealthy (or not ready in time), not as a failure of its own (shuma ended it).
      const run = core.table.get(request.runId);
      if ((request.reason === 'unhealthy' || request.reason === 'startTimeout') && run?.alive && run.wsId === ws.id) run.reason = request.reason;
      if (placement.signalRun) placement.signalRun(ws, request.runId, request.signal);
      else core.logger.warn({ ws: ws.id, run: request.runId }, `a ${placement.kind} workspace cannot stop one command alone; stop the workspace`);
      return;
    }
  }
}

function onWorkspaceSnapshot(core: CoreParts, ws: WorkspaceEntry, snapshot: ActorSnapshot): void {
  ws.snapshot = snapshot;
  for (const observer of ws.observers) core.notify(observer, snapshot);
  // A restored workspace may come back mid-stop: any first snapshot of a live actor will do.
  if (!ws.started.settled && (stateName(snapshot.value) === 'running' || (ws.persisted !== null && snapshot.status === 'active'))) {
    ws.started.resolve();
  }
  if (snapshot.status === 'done') finish(core, ws);
}

/**
 * The command actor changed: its mirror, its why() trail and its observers. run() and `exited`
 * settle from the host (the promise's fact is known there first); the reads that must agree
 * with them (getSnapshot(), why()) wait until the mirror caught up (caught-up.ts). A run the
 * actor names settles run() here too, if the host has not yet (a re-hosted actor).
 */
function onCommandSnapshot(core: CoreParts, command: CommandEntry, snapshot: ActorSnapshot): void {
  const runId = runIdOf(snapshot);
  if (runId !== null) core.why.alias(runId, command.key);
  core.why.record('command', command.key, command.snapshot, snapshot, core.clock.now());
  command.snapshot = snapshot;
  for (const observer of command.observers) core.notify(observer, snapshot);
  if (runId !== null && !command.firstRun.settled) {
    const run = core.table.get(runId);
    if (run) command.firstRun.resolve(run);
  }
  const ws = core.registry.get(command.wsId);
  if (ws) settleFirstRun(ws, command, snapshot);
  if (ws) core.placementOf(ws).commandMoved?.(ws, command, snapshot);
  for (const run of core.table.unheard(command.key)) if (hasHeardExitOf(snapshot, run.id)) core.table.hear(run);
  mirrorMoved(core, command);
}

function onPipelineSnapshot(core: CoreParts, pipeline: PipelineEntry, snapshot: ActorSnapshot): void {
  pipeline.snapshot = snapshot;
  for (const observer of pipeline.observers) core.notify(observer, snapshot);
  if (snapshot.status !== 'active') settlePipeline(core, pipeline);
}
