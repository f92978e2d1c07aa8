// The built-in example behind `npm start`: a workspace running real commands, one of which
// crashes and is relaunched with exponential backoff, every state change printed live.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRuntime, type ActorSnapshot } from '../src/index.js';

const started = Date.now();
const stamp = () => `+${String(Date.now() - started).padStart(5)} ms`;
const show = (value: ActorSnapshot['value']) => (typeof value === 'string' ? value : JSON.stringify(value));

const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-demo-'));
const rt = await createRuntime();
process.once('SIGINT', () => void rt.shutdown({ graceMs: 200 }).then(() => process.exit(130)));

const ws = await rt.createWorkspace({ label: 'demo', ttlMs: 30_000, env: { LANG: 'C' }, cwd: scratch });
console.log(`${stamp()}  workspace ${ws.label} ${ws.id}: ${show(ws.getSnapshot().value)}`);
let lastState = show(ws.getSnapshot().value);
ws.subscribe((s) => {
  // Its context changes with every command started; print the state changes only.
  if (show(s.value) === lastState) return;
  lastState = show(s.value);
  console.log(`${stamp()}  workspace ${ws.label}: ${lastState}`);
});

const hello = await ws.run({ exec: '/bin/sh', argv: ['-c', 'echo "hello from $$"; echo "to stderr" >&2'], label: 'hello' });
console.log(`${stamp()}  command hello pid ${hello.pid}`);
console.log(`${stamp()}  hello exited ${JSON.stringify(await hello.exited)}`);
console.log(`${stamp()}  hello stdout: ${JSON.stringify((await ws.logs(hello.id)).toString())}`);
console.log(`${stamp()}  hello stderr: ${JSON.stringify((await ws.logs(hello.id, { stream: 'stderr' })).toString())}`);

// Fails three times (exit 1), then succeeds: relaunched after 200, 400, 800 ms.
const flaky = await ws.run({
  exec: '/bin/sh',
  argv: ['-c', 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n"; [ $n -ge 4 ]'],
  label: 'flaky',
  restart: { onFailure: true, backoffMs: 200, maxBackoffMs: 2_000, maxRestarts: 5 },
});
const settled = new Promise<void>((resolve) => {
  flaky.subscribe((s) => {
    const c = s.context as { restarts: number; backoffDeadline: number | null; stampedAt: number; pid: number | null };
    const detail =
      s.value === 'backoff'
        ? `relaunch in ${(c.backoffDeadline ?? 0) - c.stampedAt} ms (restarts so far: ${c.restarts})`
        : s.value === 'running'
          ? `pid ${c.pid}`
          : `restarts: ${c.restarts}`;
    console.log(`${stamp()}  command flaky: ${show(s.value)}  ${detail}`);
    if (s.status === 'done') resolve();
  });
});

const sleeper = await ws.run({ exec: 'sleep', argv: ['60'], label: 'sleeper' });
console.log(`${stamp()}  command sleeper pid ${sleeper.pid} (will be stopped with the workspace)`);
await settled;

console.log(`${stamp()}  commands:`);
for (const c of await ws.commands()) {
  console.log(`           ${c.label.padEnd(8)} ${c.id} pid ${String(c.pid).padEnd(7)} alive=${c.alive} status=${c.exitStatus} restarts=${c.restarts}`);
}
console.log(`${stamp()}  health ${JSON.stringify(await rt.health())}`);
const stopped = await ws.stop({ graceMs: 500 });
console.log(`${stamp()}  stop → ${JSON.stringify(stopped)}`);
await rt.shutdown();
rmSync(scratch, { recursive: true, force: true });
console.log(`${stamp()}  runtime shut down; no process of it is left`);
