import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, SimulatedClock, type AnyActorRef } from 'xstate';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import { CommandMap } from '../src/host/registry/command-map.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';

// A workspace that lives long runs thousands of commands. What a run costs must not grow with
// how many ran before it: the workspace's context (sent and persisted at every run) and the
// main thread's label lookup stay the size of what is live. (Costs are measured in bench/;
// these tests check the structure that keeps them flat, and that nothing it knew is lost.)

describe('a long-lived workspace: what a run costs does not grow with the commands that ended', () => {
  function workspace(strategy: 'one_for_one' | 'rest_for_one') {
    const clock = new SimulatedClock();
    clock.set(1_000);
    const actor = createActor(workspaceMachine, { input: { id: 'W', label: 'w', ttlMs: null, supervision: { strategy } }, clock });
    actor.start();
    actor.send({ type: 'START', at: clock.now() });
    const child = (key: string) => (actor.getSnapshot().children as Record<string, AnyActorRef | undefined>)[key];
    const policy = resolveRestartPolicy(undefined);
    /** Runs a one-shot command to its end (spawned, exited 0): its actor is then forgotten. */
    const runToEnd = (key: string) => {
      actor.send({ type: 'RUN', at: clock.now(), key, label: `l-${key}`, policy });
      child(key)!.send({ type: 'SPAWNED', at: clock.now(), runId: `R-${key}`, pid: 100 });
      child(key)!.send({ type: 'EXITED', at: clock.now(), runId: `R-${key}`, code: 0, signal: null, status: 0 });
    };
    return { actor, clock, child, policy, runToEnd };
  }

  test('one_for_one: the group holds the live members only, whatever ran before', () => {
    const { actor, clock, child, policy, runToEnd } = workspace('one_for_one');
    actor.send({ type: 'RUN', at: clock.now(), key: 'LIVE', label: 'live', policy });
    for (let i = 0; i < 200; i++) runToEnd(`E${i}`);
    assert.equal(child('E0'), undefined, 'an ended command is forgotten');
    const group = actor.getSnapshot().context.group;
    assert.deepEqual(group.order, ['LIVE', 'E199'], 'forgotten members are dropped as the next one joins');
    assert.deepEqual(Object.keys(group.labels).sort(), ['E199', 'LIVE']);
    assert.equal(actor.getSnapshot().context.commandsStarted, 201, 'every run still counts');
    // A forgotten one restarted by request joins again, last.
    actor.send({ type: 'RUN', at: clock.now(), key: 'E3', label: 'l-E3', policy, restarts: 1 });
    assert.deepEqual(actor.getSnapshot().context.group.order, ['LIVE', 'E3']);
    assert.equal(child('E3')?.getSnapshot().value, 'starting');
  });

  test('rest_for_one keeps the declaration order whole (it decides whom a failure restarts)', () => {
    const { actor, runToEnd } = workspace('rest_for_one');
    for (let i = 0; i < 5; i++) runToEnd(`E${i}`);
    assert.deepEqual(actor.getSnapshot().context.group.order, ['E0', 'E1', 'E2', 'E3', 'E4']);
  });

  test('labels by index: found without a scan, derived ones take the lowest free suffix, as before', () => {
    const map = new CommandMap<{ label: string }>();
    map.set('a', { label: 'sleep' });
    map.set('b', { label: 'sleep-2' });
    map.set('c', { label: 'sleep-3' });
    assert.equal(map.withLabel('sleep-2'), map.get('b'));
    assert.equal(map.freeSuffixed('sleep'), 'sleep-4');
    map.set('d', { label: 'sleep-4' });
    map.delete('b');
    assert.equal(map.withLabel('sleep-2'), undefined, 'a removed command frees its label');
    assert.equal(map.freeSuffixed('sleep'), 'sleep-2', 'the lowest free suffix is reused');
    map.set('e', { label: 'sleep-2' });
    assert.equal(map.freeSuffixed('sleep'), 'sleep-5');
    // A label chosen by hand that looks derived is taken all the same.
    map.set('f', { label: 'sleep-5' });
    assert.equal(map.freeSuffixed('sleep'), 'sleep-6');
    // Two holders of one label (restored from an older snapshot): removing one leaves the other named.
    map.set('g', { label: 'twin' });
    map.set('h', { label: 'twin' });
    map.delete('g');
    assert.equal(map.withLabel('twin'), map.get('h'));
    // A command replaced under its key (a new spec, same label) is the holder; removed, its label is free.
    const replaced = { label: 'web' };
    map.set('w', { label: 'web' });
    map.set('w', replaced);
    assert.equal(map.withLabel('web'), replaced);
    map.delete('w');
    assert.equal(map.withLabel('web'), undefined, 'the label of a replaced then removed command is free again');
    map.clear();
    assert.equal(map.withLabel('sleep'), undefined);
    assert.equal(map.freeSuffixed('sleep'), 'sleep-2');
  });
});
