// What a command gets from the scheduler: what the runtime itself runs with, nothing of the
// short slice the native spawner's thread asks for (native/spawn-thread.c): it is cloned by that
// thread, and the child sets the default back before its exec (native/launch-child.c).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { describe, test } from 'node:test';
import { startRuntime } from './helpers.js';

/** `se.slice` and `policy` of a /proc/<pid>/sched text (CONFIG_SCHED_DEBUG). */
function schedOf(text: string): { slice: number; policy: number } {
  const field = (name: string) => {
    const match = new RegExp(`^${name.replace('.', '\\.')}\\s*:\\s*(\\d+)`, 'm').exec(text);
    assert.ok(match, `${name} in:\n${text}`);
    return Number(match[1]);
  };
  return { slice: field('se.slice'), policy: field('policy') };
}

/** The runtime's own thread (the test's main thread: its tid is the pid). */
const RUNTIME_SCHED = `/proc/self/task/${process.pid}/sched`;
const readable = existsSync(RUNTIME_SCHED) && /^se\.slice/m.test(readFileSync(RUNTIME_SCHED, 'latin1'));

describe('scheduling of commands', () => {
  test("a command runs with the runtime's slice, policy and nice, not the spawner thread's", { skip: readable ? false : 'no se.slice in /proc/<pid>/sched here (kernel without EEVDF or SCHED_DEBUG)' }, async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'sched' });
    for (let run = 0; run < 3; run++) {
      // cat reads its own entry: the program as it runs, after the exec.
      const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'cat /proc/self/sched; echo "nice $(cut -d" " -f19 /proc/self/stat)"'], label: `sched-${run}` });
      assert.equal((await cmd.exited).code, 0);
      const out = (await ws.logs(cmd.id)).toString();
      const child = schedOf(out);
      const runtime = schedOf(readFileSync(RUNTIME_SCHED, 'latin1'));
      assert.equal(child.slice, runtime.slice, `the default slice, not the spawner thread's:\n${out}`);
      assert.equal(child.policy, runtime.policy);
      assert.match(out, new RegExp(`^nice ${getPriority()}$`, 'm'));
    }
  });
});
