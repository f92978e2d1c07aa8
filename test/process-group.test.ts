// What a command is to the kernel: the leader of a process group of its own (a stop's signal
// reaches its descendants), without a controlling terminal. A command alone leads a session, so
// a scheduling autogroup, of its own (in the runtime's, a freshly started program delayed the
// threads that tell its start: restarts); a pipeline's nodes stay in the runtime's session with
// the native spawner (a session per stage made pipelines collapse under load). docs/architecture.md
// § Processes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRuntime, untilState } from './helpers.js';

/** pid, pgrp, session and tty_nr of a /proc/<pid>/stat line. */
function statOf(line: string): { pid: number; pgrp: number; session: number; tty: number } {
  const pid = Number(line.slice(0, line.indexOf(' ')));
  // After the command name (which may hold spaces): state ppid pgrp session tty_nr …
  const [, , pgrp, session, tty] = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return { pid, pgrp: Number(pgrp), session: Number(session), tty: Number(tty) };
}

/** A shell's report of itself: its stat line, then its autogroup line (empty without autogroups). */
const REPORT = 'cat /proc/$$/stat; cat /proc/$$/autogroup 2>/dev/null || echo; echo END';

/** The scheduling autogroup of the runtime (`/autogroup-N`), null where the kernel has none. */
const RUNTIME_AUTOGROUP = autogroupOf(existsSync('/proc/self/autogroup') ? readFileSync('/proc/self/autogroup', 'latin1') : '');

function autogroupOf(line: string): string | null {
  return /^(\/autogroup-\d+)/.exec(line)?.[1] ?? null;
}

/** Each run's report (REPORT), in the order they ran. */
function reportsOf(output: string): { stat: ReturnType<typeof statOf>; autogroup: string | null }[] {
  return output
    .split('END\n')
    .filter((report) => report.trim() !== '')
    .map((report) => {
      const [stat, autogroup] = report.split('\n');
      return { stat: statOf(stat!), autogroup: autogroupOf(autogroup ?? '') };
    });
}

const INDEX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/index.js');
/** `script` (util-linux) runs a program on a terminal of its own making. */
const SCRIPT = ['/usr/bin/script', '/bin/script'].find((file) => existsSync(file));

describe('process groups and sessions', () => {
  test('a command leads a process group and a session of its own, so a scheduling autogroup of its own', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'group' });
    // Every run, each into the file (a log holds the last run's): the first is started ahead of its
    // actor's request, the others as restarts on a standing order.
    const dir = mkdtempSync(path.join(tmpdir(), 'shuma-group-'));
    const file = path.join(dir, 'reports');
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', `{ ${REPORT}; } >> ${file}; exit 1`], label: 'stat', restart: { onFailure: true, backoffMs: 0, maxRestarts: 2 } });
    await untilState(cmd, 'gaveUp');
    const runtime = statOf(readFileSync('/proc/self/stat', 'latin1'));
    const reports = reportsOf(readFileSync(file, 'latin1'));
    rmSync(dir, { recursive: true, force: true });
    assert.equal(reports.length, 3, 'three runs reported');
    for (const { stat: child, autogroup } of reports) {
      assert.equal(child.pgrp, child.pid, 'the leader of its own process group');
      assert.notEqual(child.pgrp, runtime.pgrp);
      assert.equal(child.session, child.pid, 'the leader of its own session');
      assert.equal(child.tty, 0, 'no controlling terminal');
      if (RUNTIME_AUTOGROUP !== null) assert.notEqual(autogroup, RUNTIME_AUTOGROUP, "not in the runtime's autogroup");
    }
  });

  test("a pipeline's nodes lead process groups of their own; the native spawner keeps them in the runtime's session and autogroup", async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'pipeline-group' });
    const p = await rt.runPipeline({
      label: 'stat',
      workspace: ws.id,
      nodes: [
        { label: 'report', exec: 'sh', argv: ['-c', REPORT] },
        { label: 'pass', exec: 'cat' },
      ],
      edges: [{ from: 'report', to: 'pass' }],
    });
    assert.equal((await p.done).ok, true);
    const runtime = statOf(readFileSync('/proc/self/stat', 'latin1'));
    const reports = reportsOf((await ws.logs(p.nodes[1]!.commandId)).toString());
    assert.equal(reports.length, 1);
    const { stat: child, autogroup } = reports[0]!;
    assert.equal(child.pgrp, child.pid, 'the leader of its own process group');
    assert.equal(child.tty, 0, 'no controlling terminal');
    if ((await rt.health()).spawner === 'native') {
      assert.equal(child.session, runtime.session, "in the runtime's session");
      if (RUNTIME_AUTOGROUP !== null) assert.equal(autogroup, RUNTIME_AUTOGROUP, "in the runtime's autogroup");
    } else {
      assert.equal(child.session, child.pid, 'child_process spawns detached: a session of its own');
    }
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
