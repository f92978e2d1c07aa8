// What a command is to the kernel: the leader of a process group of its own (a stop's signal
// reaches its descendants), without a controlling terminal; with the native spawner, in the
// runtime's session, so that it shares the runtime's scheduling autogroup (a session per command
// made pipelines collapse under load: docs/architecture.md § Processes).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRuntime } from './helpers.js';

/** pid, pgrp, session and tty_nr of a /proc/<pid>/stat line. */
function statOf(line: string): { pid: number; pgrp: number; session: number; tty: number } {
  const pid = Number(line.slice(0, line.indexOf(' ')));
  // After the command name (which may hold spaces): state ppid pgrp session tty_nr …
  const [, , pgrp, session, tty] = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return { pid, pgrp: Number(pgrp), session: Number(session), tty: Number(tty) };
}

const INDEX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/index.js');
/** `script` (util-linux) runs a program on a terminal of its own making. */
const SCRIPT = ['/usr/bin/script', '/bin/script'].find((file) => existsSync(file));

describe('process groups and sessions', () => {
  test('a command leads a process group of its own; the native spawner keeps it in the runtime session', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'group' });
    const cmd = await ws.run({ exec: 'cat', argv: ['/proc/self/stat'], label: 'stat' });
    const exit = await cmd.exited;
    assert.equal(exit.code, 0);
    const child = statOf((await ws.logs(cmd.id)).toString());
    const runtime = statOf(readFileSync('/proc/self/stat', 'latin1'));
    assert.equal(child.pid, cmd.pid);
    assert.equal(child.pgrp, child.pid, 'the leader of its own process group');
    assert.notEqual(child.pgrp, runtime.pgrp);
    assert.equal(child.tty, 0, 'no controlling terminal');
    if ((await rt.health()).spawner === 'native') assert.equal(child.session, runtime.session, "in the runtime's session");
    else assert.equal(child.session, child.pid, 'child_process spawns detached: a session of its own');
  });

  test('a runtime on a terminal: its commands have none (opening /dev/tty is refused), the runtime keeps its own', { skip: SCRIPT ? false : 'no script(1) here to make a terminal' }, async () => {
    // The runtime runs on a terminal made by script(1); its command reports its stat and
    // whether it could open /dev/tty; the runtime reports its own terminal.
    const program = `
      import { createRuntime } from ${JSON.stringify(INDEX)};
      import { readFileSync } from 'node:fs';
      const rt = await createRuntime({ workers: 1 });
      try {
        const ws = await rt.createWorkspace({ label: 'tty' });
        const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'cat /proc/$$/stat; if (exec 3<>/dev/tty) 2>/dev/null; then echo TTY; else echo NOTTY; fi'], label: 'tty' });
        await cmd.exited;
        const out = (await ws.logs(cmd.id)).toString();
        console.log('RESULT ' + JSON.stringify({ out, runtime: readFileSync('/proc/self/stat', 'latin1') }));
      } finally {
        await rt.shutdown({ graceMs: 0 });
      }`;
    const command = `${JSON.stringify(process.execPath)} --input-type=module -e ${shellQuote(program)}`;
    const { stdout } = await promisify(execFile)(SCRIPT!, ['-qec', command, '/dev/null'], { timeout: 60_000, maxBuffer: 1 << 20 });
    const line = stdout.split(/\r?\n/).find((l) => l.startsWith('RESULT '));
    assert.ok(line, `the program reported: ${stdout}`);
    const { out, runtime } = JSON.parse(line.slice('RESULT '.length)) as { out: string; runtime: string };
    assert.notEqual(statOf(runtime).tty, 0, 'the runtime is on a terminal');
    const [stat, tty] = out.trim().split('\n');
    const child = statOf(stat!);
    assert.equal(child.tty, 0, 'the command has no controlling terminal');
    assert.equal(tty, 'NOTTY', 'the command cannot open /dev/tty');
    assert.equal(child.pgrp, child.pid);
  });
});

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
