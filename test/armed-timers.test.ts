import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createActor, createMachine, SimulatedClock } from 'xstate';
import { cancelsOnlyWhenArmed } from '../src/actors/armed-timers.js';

// The scheduler of a workspace's actors cancels only while some timer is armed in it
// (actors/armed-timers.ts): a state left with its timer armed still has it cancelled.

const scheduled = (actor: { system: unknown }) => Object.keys((actor.system as { _snapshot: { _scheduledEvents: object } })._snapshot._scheduledEvents);

test('a state left while its timer is armed has it cancelled; one left with none armed cancels nothing', () => {
  const machine = createMachine({
    initial: 'waiting',
    states: {
      waiting: { after: { 100: 'late' }, on: { LEAVE: 'left', NEXT: 'idle' } },
      idle: { on: { LEAVE: 'left' } },
      left: { on: { BACK: 'waiting' } },
      late: {},
    },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, { clock });
  cancelsOnlyWhenArmed(actor.system);
  actor.start();
  assert.equal(scheduled(actor).length, 1, 'the timer is armed');
  actor.send({ type: 'LEAVE' });
  assert.deepEqual(scheduled(actor), [], 'leaving cancelled it');
  clock.increment(500);
  assert.equal(actor.getSnapshot().value, 'left', 'it never ran out');
  actor.send({ type: 'BACK' });
  actor.send({ type: 'NEXT' });
  clock.increment(500);
  assert.equal(actor.getSnapshot().value, 'idle');
  assert.deepEqual(scheduled(actor), []);
  actor.stop();
});
