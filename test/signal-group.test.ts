// A run's process group signalled, or asked after (signal 0), through the addon's kill(2): "no
// such group" is an answer, not a thrown ErrnoException (the reaper asks at every exit).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { NativeSpawner } from '../src/host/spawn/native-spawner.js';
import { signalGroup } from '../src/host/processes/signals.js';

function addonProblem(): string | false {
  try {
    return loadSpawnerAddon().kill ? false : 'the addon was built without kill';
  } catch (error) {
    return `the native spawner does not load here: ${(error as Error).message}`;
  }
}

/** Every line logged at error level, to see that nothing was. */
function recordingLogger(): { logger: pino.Logger; errors: string[] } {
  const errors: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
  return { logger, errors };
}

/** A process leading a group of its own (a run's shape); nobody else is in it, so it is empty once its leader is reaped. */
async function groupLeader(): Promise<ChildProcess> {
  const leader = spawn('/bin/sleep', ['30'], { detached: true, stdio: 'ignore' });
  await once(leader, 'spawn');
  return leader;
}

/** Calls of process.kill made while `body` runs. */
function processKillCalls(body: () => void): number {
  const original = process.kill;
  let calls = 0;
  process.kill = ((...args: Parameters<typeof process.kill>) => {
    calls++;
    return original.apply(process, args);
  }) as typeof process.kill;
  try {
    body();
  } finally {
    process.kill = original;
  }
  return calls;
}

describe('a process group signalled through the addon', { skip: addonProblem() }, () => {
  // The native spawner gives signalGroup the addon's kill as it loads it, as a runtime's does.
  if (!addonProblem()) new NativeSpawner(loadSpawnerAddon());

  test('a group with members is there; once they are gone it is not, without process.kill or an error logged', async () => {
    const { logger, errors } = recordingLogger();
    const leader = await groupLeader();
    const pgid = leader.pid!;
    const exited = once(leader, 'exit');
    try {
      assert.equal(signalGroup(pgid, 0, logger), true);
    } finally {
      leader.kill('SIGKILL');
      await exited;
    }
    // Reaped by child_process: the group is empty.
    let there: boolean | undefined;
    const calls = processKillCalls(() => (there = signalGroup(pgid, 0, logger)));
    assert.equal(there, false);
    assert.equal(calls, 0, 'asked through the addon, not by a process.kill that throws');
    assert.deepEqual(errors, []);
  });

  test('a signal named by the runtime reaches the group as that signal', async () => {
    const { logger, errors } = recordingLogger();
    const leader = await groupLeader();
    const exited = once(leader, 'exit');
    assert.equal(signalGroup(leader.pid!, 'SIGUSR1', logger), true);
    const [, signal] = await exited;
    assert.equal(signal, 'SIGUSR1');
    assert.deepEqual(errors, []);
  });
});
