import { createActor, setup, spawnChild, type AnyEventObject, type SnapshotFrom } from 'xstate';
import { initialCommandContext, report, spawnRequest, type CommandInput } from './command-context.js';
import type { commandMachine } from './command-machine.js';

// Where a new command that waits for nothing is once XState has taken its first steps: in
// `starting`, having told its workspace it was `waiting` and asked it for a spawn. Those steps
// (the initial state, the entry into `waiting`, the eventless step to `starting`) were ~14% of
// the actor thread's work per run, for a snapshot that differs from command to command only by
// its context. The machine takes them once per thread for sample commands; every such command
// then gets that snapshot with its own context, and sends its workspace what the steps would
// have sent. A machine whose first steps do anything else (an assignment, another event, another
// state) is caught as it is learnt, and its commands take the steps themselves.

type CommandMachine = typeof commandMachine;
type CommandSnapshot = SnapshotFrom<CommandMachine>;

/** A new command's snapshot, and what its first steps send its workspace, in order. */
export interface FirstSteps {
  snapshot: CommandSnapshot;
  toParent: readonly AnyEventObject[];
}

/** Inputs unlike each other in every field the first steps read. */
const SAMPLES: readonly CommandInput[] = [
  {
    key: 'shuma.start.a',
    wsId: 'shuma.start.ws',
    label: 'a',
    policy: { onFailure: false, always: false, backoffMs: 200, maxBackoffMs: 30_000, maxRestarts: 0, resetAfterMs: 30_000 },
    at: 1,
    probe: null,
    waits: false,
    judged: false,
  },
  {
    key: 'shuma.start.b',
    wsId: 'shuma.start.other-ws',
    label: 'b',
    policy: { onFailure: true, always: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: 3, resetAfterMs: 10 },
    at: 2,
    probe: { kind: 'exec', polled: true, intervalMs: 5, timeoutMs: 3, failureThreshold: 2, startTimeoutMs: 7, text: 'exec probe' },
    judged: true,
    restarts: 4,
  },
];

/** What its first steps send its workspace: its `waiting`, then its spawn request (all at its creation time). */
function firstSent(context: ReturnType<typeof initialCommandContext>): AnyEventObject[] {
  return [report(context, 'waiting', context.stampedAt), spawnRequest(context)];
}

/** The snapshot a command reaches by its first steps, and what they send its parent, asked of the machine itself. */
export function stepFirst(machine: CommandMachine, input: CommandInput): FirstSteps {
  const toParent: AnyEventObject[] = [];
  const parent = createActor(
    setup({ actors: { command: machine } }).createMachine({
      entry: spawnChild('command', { id: input.key, input }),
      on: { '*': { actions: ({ event }) => void toParent.push(event) } },
    }),
  );
  parent.start();
  const snapshot = (parent.getSnapshot().children as Record<string, { getSnapshot(): CommandSnapshot }>)[input.key]!.getSnapshot();
  parent.stop();
  return { snapshot, toParent };
}

const json = (value: unknown) => JSON.stringify(value);

/**
 * `template` with `context`, built field by field in XState's order (createMachineSnapshot's),
 * so that it has the hidden class of every snapshot XState makes: a spread made one of its own,
 * and XState's every read of a snapshot met two (learn() checks the fields are XState's).
 */
function withContext(template: CommandSnapshot, context: unknown): CommandSnapshot {
  const t = template as unknown as Record<string, unknown> & { _nodes: unknown[] };
  return {
    status: t.status,
    output: t.output,
    error: t.error,
    machine: t.machine,
    context,
    _nodes: t._nodes.slice(),
    value: t.value,
    tags: new Set<string>(),
    children: {},
    historyValue: {},
    matches: t.matches,
    hasTag: t.hasTag,
    can: t.can,
    getMeta: t.getMeta,
    toJSON: t.toJSON,
  } as unknown as CommandSnapshot;
}

/**
 * Gives new commands that wait for nothing the snapshot of their first steps without taking
 * them (`null`: the command takes them itself, as one that waits for its dependencies does).
 */
export class StartedCommands {
  private template: CommandSnapshot | null | undefined;

  constructor(private readonly machine: CommandMachine) {}

  firstSteps(input: CommandInput): FirstSteps | null {
    if (input.waits === true) return null;
    if (this.template === undefined) this.template = this.learn();
    if (this.template === null) return null;
    const context = Object.assign({}, initialCommandContext(input));
    return { snapshot: withContext(this.template, context), toParent: firstSent(context) };
  }

  /** The template, once every sample's first steps are what the template and `firstSent` give; null otherwise. */
  private learn(): CommandSnapshot | null {
    let template: CommandSnapshot | null = null;
    for (const input of SAMPLES) {
      const stepped = stepFirst(this.machine, input);
      const { snapshot } = stepped;
      const context = initialCommandContext(input);
      const as = (s: CommandSnapshot) => ({ status: s.status, value: s.value, output: s.output, error: s.error, context: s.context, children: s.children, historyValue: s.historyValue, tags: [...s.tags] });
      const nodes = snapshot._nodes.map((node) => node.id).join();
      if (template !== null && template._nodes.map((node) => node.id).join() !== nodes) return null;
      template ??= snapshot;
      const made = withContext(template, context);
      if (json(Object.keys(made)) !== json(Object.keys(snapshot))) return null;
      if (json(as(made)) !== json(as(snapshot)) || json(firstSent(context)) !== json(stepped.toParent)) return null;
    }
    return template;
  }
}
