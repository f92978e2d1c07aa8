import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assign, createActor, createMachine, type AnyMachineSnapshot } from 'xstate';
import type { CommandInput } from '../src/machines/command-context.js';
import { commandMachine } from '../src/machines/command-machine.js';
import { StartedCommands, stepFirst } from '../src/machines/command-start.js';
import { quietStep } from '../src/machines/quiet-steps.js';
import { resolveProbe } from '../src/protocol/supervision-spec.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';

// A new command that waits for nothing gets the snapshot its first steps reach, and sends what
// they send, without taking them (machines/command-start.ts): it must be what the steps give,
// and a machine whose first steps do anything else must take them.

const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

const INPUTS: CommandInput[] = [
  { key: '01JF0000000000000000000K01', wsId: 'W1', label: 'true', policy: resolveRestartPolicy({ onFailure: false }), at: 1_796_000_000_000, probe: null, waits: false, judged: false },
  { key: 'K2', wsId: 'W2', label: 'a label with ünïcode and "quotes"', policy: resolveRestartPolicy({ onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: 5 }), at: 7 },
  { key: 'K3', wsId: 'W3', label: '', policy: resolveRestartPolicy({ onFailure: true, always: true }), at: 0, probe: resolveProbe({ tcp: 8080 }), judged: true, restarts: 3 },
  { key: 'K4', wsId: 'W4', label: 'l', policy: resolveRestartPolicy({ onFailure: true, backoffMs: 0, maxBackoffMs: 0 }), at: 9, probe: resolveProbe({ line: 'up' }), waits: false, restarts: 0 },
];

/** What of a machine snapshot anyone reads: its persisted form, its nodes and tags. */
const seen = (snapshot: AnyMachineSnapshot) => ({
  persisted: plain(commandMachine.getPersistedSnapshot(snapshot as never)),
  nodes: snapshot._nodes.map((node) => node.id),
  tags: [...snapshot.tags],
  children: Object.keys(snapshot.children),
});

test("a command that waits for nothing is given the very snapshot its first steps reach, and sends what they send, in order", () => {
  const started = new StartedCommands(commandMachine);
  for (const input of INPUTS) {
    const first = started.firstSteps(input);
    assert.ok(first, 'the command machine is one whose first steps can be given');
    const stepped = stepFirst(commandMachine, input);
    assert.deepEqual(seen(first.snapshot), seen(stepped.snapshot), input.key);
    assert.deepEqual(plain(first.toParent), plain(stepped.toParent), input.key);
    assert.deepEqual(
      stepped.toParent.map((event) => event.type),
      ['MEMBER', 'HOST_REQUEST'],
    );
  }
});

test('a command that waits for its dependencies takes its first steps itself', () => {
  assert.equal(new StartedCommands(commandMachine).firstSteps({ ...INPUTS[0]!, waits: true }), null);
});

test('a machine whose first steps do more than report and ask for a spawn takes them itself, never templated', () => {
  const assigning = commandMachine.provide({ actions: { requestSpawn: assign({ runs: 5 }) } });
  assert.equal(new StartedCommands(assigning as typeof commandMachine).firstSteps(INPUTS[0]!), null);
  const silent = commandMachine.provide({ actions: { requestSpawn: () => undefined } });
  assert.equal(new StartedCommands(silent as typeof commandMachine).firstSteps(INPUTS[0]!), null);
});

test('a step is skipped only where the transition XState selects has no target and no action (or none is selected)', () => {
  const machine = createMachine({
    initial: 'a',
    on: { RELAY: { actions: 'relay' } },
    states: { a: { on: { NOTHING: {}, GO: 'b', ACT: { actions: assign({}) } } }, b: {} },
  });
  const actor = createActor(machine).start();
  const snapshot = actor.getSnapshot();
  const scope = { defer: () => assert.fail('nothing to defer'), emit: () => assert.fail('nothing to emit') } as never;
  assert.equal(quietStep(machine, snapshot, { type: 'NOTHING' }, scope), snapshot);
  assert.equal(quietStep(machine, snapshot, { type: 'UNHEARD' }, scope), snapshot);
  assert.equal(quietStep(machine, snapshot, { type: 'GO' }, scope), undefined);
  assert.equal(quietStep(machine, snapshot, { type: 'ACT' }, scope), undefined);
  // `relay` here is no emit: the step is taken.
  assert.equal(quietStep(machine, snapshot, { type: 'RELAY' }, scope), undefined);
  // An error nobody handles is a step of its own (the actor fails).
  assert.equal(quietStep(machine, snapshot, { type: 'xstate.error.actor.x', error: new Error('e') } as never, scope), undefined);
  actor.stop();
});
