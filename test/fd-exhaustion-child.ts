// Run by test/fd-exhaustion.test.ts under a low RLIMIT_NOFILE (prlimit): a runtime that makes
// workspaces running a command each until a spawn fails for lack of descriptors, then shows it
// still serves. Each step is a JSON line on stdout; the test decides what is right.
import { closeSync, openSync } from 'node:fs';
import { createRuntime, type Command, type Workspace } from '../src/index.js';

const [marker] = process.argv.slice(2);
if (!marker) throw new Error('usage: fd-exhaustion-child <marker>');
const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
process.on('uncaughtException', (error) => {
  say({ uncaught: String(error.stack ?? error) });
  process.exit(70);
});

const rt = await createRuntime({ workers: 1, statsIntervalMs: 5 });
const workspaces: Workspace[] = [];
const commands: Command[] = [];
let failure: { code?: string; message: string } | null = null;
for (let i = 0; i < 5000 && !failure; i++) {
  try {
    const ws = await rt.createWorkspace({ label: `fd-${i}` });
    workspaces.push(ws);
    commands.push(await ws.run({ exec: 'sh', argv: ['-c', `sleep 60; : ${marker}`] }));
  } catch (error) {
    failure = { code: (error as { code?: string }).code, message: (error as Error).message };
  }
}
say({ failure, workspaces: workspaces.length });
// Whatever the failed spawn gave back is taken too, so that every reader of /proc meets the limit
// (the sampler on its next full scan: it must say so and skip the round, not throw).
const held: number[] = [];
for (;;) {
  try {
    held.push(openSync('/dev/null', 'r'));
  } catch {
    break;
  }
}
const deadline = Date.now() + 20_000;
while (!rt.warnings.some((w) => /sampl/i.test(w)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
say({ warnings: rt.warnings });
// A stop begun while /proc cannot be read goes on, and ends only once it could see the end.
const stopping = workspaces.shift()!.stop({ graceMs: 0 });
// Its command was killed and reaped: the reaper has looked in /proc for the rest, and could not.
await commands[0]!.exited;
// Some descriptors back: it serves as before.
for (const fd of held) closeSync(fd);
await stopping;
say({ stoppedWhileExhausted: true });
for (const ws of workspaces.splice(0, 20)) await ws.stop({ graceMs: 0 });
const again = await rt.createWorkspace({ label: 'after' });
const run = await again.run({ exec: 'sh', argv: ['-c', `echo served; : ${marker}`] });
say({ served: (await run.exited).status });
await rt.shutdown({ graceMs: 0 });
say({ closed: true });
