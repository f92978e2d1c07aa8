// Run by test/exit-gap.test.ts as a separate process: a runtime whose supervised command (a shell
// that starts a descendant) is killed, then process.exit() while the loop has heard nothing of
// it — the moment the native spawner's relaunch thread has already started the next run, which
// nobody was told of. It prints the pids it saw (JSON, one line) just before it exits.
import { writeSync } from 'node:fs';
import { coreOf } from '../src/host/runtime.js';
import { createRuntime } from '../src/index.js';
import { hasExited, holdTheLoopUntil, markedPids } from './proc-marks.js';

const [marker, stateDir, orphans] = process.argv.slice(2);
if (!marker) throw new Error('usage: exit-gap-child <marker> [stateDir kill|adopt]');

const rt = await createRuntime({ workers: 1, statsIntervalMs: 0, ...(stateDir ? { stateDir, orphans: orphans as 'kill' | 'adopt' } : {}) });
const native = (await rt.health()).spawner === 'native';
// Which runs have their relaunch armed on the addon's thread (standing-orders.ts arms as it hands a run its order).
const spawner = coreOf(rt).spawner;
const armed = new Set<number>();
const arm = spawner.armRelaunch?.bind(spawner);
if (arm) spawner.armRelaunch = (pid, order, always) => (arm(pid, order, always) ? (armed.add(pid), true) : false);

const ws = await rt.createWorkspace({ label: 'exit-gap' });
const cmd = await ws.run({ exec: 'sh', argv: ['-c', `/bin/sleep 300 ${marker} & wait`], label: 'loop', restart: { onFailure: true, backoffMs: 0 } });
const first = cmd.pid;
// The run and its descendant up (the fork carries the marker from the start), its relaunch armed where it can be.
for (const deadline = Date.now() + 10_000; markedPids(marker).length < 2 || (native && !armed.has(first)); ) {
  if (Date.now() > deadline) throw new Error(`the first run did not start (armed: ${armed.has(first)})`);
  await new Promise((resolve) => setTimeout(resolve, 5));
}
const before = new Set(markedPids(marker));
process.kill(first, 'SIGKILL');
// From here on the loop runs nothing: only the relaunch thread can start a run (native).
if (native) holdTheLoopUntil(() => markedPids(marker).filter((pid) => !before.has(pid)).length >= 2, 'the relaunch and its descendant');
else holdTheLoopUntil(() => hasExited(first), 'the first run\'s exit');
const pids = [...new Set([...before, ...markedPids(marker)])];
writeSync(1, `${JSON.stringify({ first, before: [...before], pids, relaunched: native })}\n`);
process.exit(0);
