// Logs that outlive the process: every command's output also in files under stateDir/logs,
// stdout and stderr apart, rotated by size, read back across relaunches and runtime restarts.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isShumaError, type Command, type Runtime } from '../src/index.js';
import { pollUntil, reach, startRuntime } from './helpers.js';

const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
function stateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-logs-'));
  dirs.push(dir);
  return dir;
}

/** The files of a workspace's logs directory, by name. */
function filesOf(dir: string, wsId: string): string[] {
  const where = path.join(dir, 'logs', wsId);
  return existsSync(where) ? readdirSync(where).sort() : [];
}

/** This process's descriptors open on a file under `where`. */
function descriptorsUnder(where: string): string[] {
  const links = readdirSync('/proc/self/fd').map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
  return links.filter((link) => link.startsWith(where));
}

describe('log files', () => {
  test('stdout and stderr go to files of their own; logs(command) reads every run of it, logs(run) that run', async () => {
    const dir = stateDir();
    const rt = await startRuntime({ stateDir: dir });
    const ws = await rt.createWorkspace({ label: 'files' });
    const script = 'echo "out $$"; echo "err $$" >&2; exit 1';
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', script], label: 'crashy', restart: { onFailure: true, backoffMs: 1, maxRestarts: 2 } });
    await reach(cmd, ['gaveUp']);
    const runs = await ws.commands();
    assert.equal(runs.length, 3);
    const all = (await ws.logs('crashy')).toString();
    assert.deepEqual(all.split('\n').filter(Boolean), runs.map((r) => `out ${r.pid}`), 'every run, oldest first');
    assert.equal((await ws.logs(cmd.commandKey, { stream: 'stderr' })).toString(), runs.map((r) => `err ${r.pid}\n`).join(''));
    assert.equal((await ws.logs(runs[2]!.id)).toString(), `out ${runs[2]!.pid}\n`, 'a run id still names that run alone');
    const names = filesOf(dir, ws.id);
    assert.deepEqual(names, [`crashy.${cmd.commandKey}.err.log`, `crashy.${cmd.commandKey}.out.log`]);
    assert.equal(readFileSync(path.join(dir, 'logs', ws.id, names[1]!), 'utf8'), all);
  });

  test('logs by lines: the last N lines, from the files and from a run ring', async () => {
    const rt = await startRuntime({ stateDir: stateDir() });
    const ws = await rt.createWorkspace({ label: 'lines' });
    const cmd = await ws.run({ exec: '/usr/bin/seq', argv: ['1', '1000'], label: 'seq' });
    await reach(cmd, ['exited']);
    assert.equal((await ws.logs('seq', { lines: 3 })).toString(), '998\n999\n1000\n');
    assert.equal((await ws.logs(cmd.id, { lines: 2 })).toString(), '999\n1000\n');
    assert.equal((await ws.logs('seq', { lines: 0 })).length, 0);
    await assert.rejects(ws.logs('seq', { lines: -1 }), (e: unknown) => isShumaError(e) && e.code === 'INVALID_ARGUMENT');
  });

  test('files are rotated by size and bounded by the kept count; the last lines read across them', async () => {
    const dir = stateDir();
    const rt = await startRuntime({ stateDir: dir, logFiles: { maxBytes: 4096, keep: 2 } });
    const ws = await rt.createWorkspace({ label: 'rotate' });
    // ~49 KB in 5-byte lines, in 100 bursts apart in time, so that batches stay small.
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'i=0; while [ $i -lt 100 ]; do seq 1000 1099; sleep 0.005; i=$((i+1)); done; echo last'], label: 'big' });
    await reach(cmd, ['exited']);
    const out = `big.${cmd.commandKey}.out.log`;
    await pollUntil(() => filesOf(dir, ws.id), (names) => names.includes(`${out}.2`), 'two rotations');
    assert.ok(!filesOf(dir, ws.id).includes(`${out}.3`), 'no more than `keep` rotated files');
    for (const name of [out, `${out}.1`, `${out}.2`]) {
      assert.ok(statSync(path.join(dir, 'logs', ws.id, name)).size <= 4096 + 65536, `${name} is bounded`);
    }
    assert.equal((await ws.logs('big', { lines: 2 })).toString(), '1099\nlast\n');
  });

  test('timestamps on request: each line of the file starts with the time it was read', async () => {
    const dir = stateDir();
    const rt = await startRuntime({ stateDir: dir });
    const ws = await rt.createWorkspace({ label: 'stamped' });
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'printf "a\\nb"; sleep 0.05; printf "c\\n"'], label: 'ts', timestamps: true });
    await reach(cmd, ['exited']);
    const lines = (await ws.logs('ts')).toString().split('\n').filter(Boolean);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z a$/);
    assert.match(lines[1]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z bc$/, 'a line continued by a later chunk is stamped once');
    assert.equal((await ws.logs(cmd.id)).toString(), 'a\nbc\n', 'the ring keeps the bytes as written');
  });

  test('logs survive a restart of the runtime: the restored command appends to the same files', async () => {
    const dir = stateDir();
    let rt: Runtime = await startRuntime({ stateDir: dir });
    let ws = await rt.createWorkspace({ label: 'survive' });
    const first = await ws.run({ exec: '/bin/sh', argv: ['-c', 'echo "started $$"; exec sleep 1000'], label: 'svc', restart: { onFailure: true } });
    await pollUntil(() => ws.logs('svc'), (b) => b.toString().includes('started'), 'the first run to write');
    await rt.shutdown({ graceMs: 0 });
    rt = await startRuntime({ stateDir: dir });
    ws = rt.workspace(ws.id)!;
    const text = await pollUntil(() => ws.logs('svc'), (b) => b.toString().split('\n').filter(Boolean).length === 2, 'the relaunch to write');
    assert.match(text.toString(), new RegExp(`^started ${first.pid}\\nstarted \\d+\\n$`));
  });

  test('a removed command and a stopped workspace let their files go at once: no descriptor stays open on them', async () => {
    const dir = stateDir();
    const rt = await startRuntime({ stateDir: dir });
    // Writers that never pause, so no idle timer closes their files first.
    const writer = { exec: '/bin/sh', argv: ['-c', 'while :; do echo tick; sleep 0.02; done'] };
    const ws = await rt.createWorkspace({ label: 'letgo' });
    const kept = await ws.run({ ...writer, label: 'kept' });
    const removed = await ws.run({ ...writer, label: 'removed' });
    const logs = path.join(dir, 'logs', ws.id);
    const fileOf = (cmd: Command) => path.join(logs, `${cmd.label}.${cmd.commandKey}.out.log`);
    await pollUntil(() => descriptorsUnder(logs), (open) => open.includes(fileOf(kept)) && open.includes(fileOf(removed)), 'both files open');
    await ws.removeCommand('removed');
    assert.deepEqual(descriptorsUnder(logs), [fileOf(kept)], 'the removed command\'s file is closed, the other one still written');
    assert.match(readFileSync(fileOf(removed), 'utf8'), /^(tick\n)+$/, 'its file stays on disk, whole');

    await ws.stop({ graceMs: 0 });
    assert.deepEqual(descriptorsUnder(logs), [], 'a stopped workspace holds none of its files');
    assert.match(readFileSync(fileOf(kept), 'utf8'), /^(tick\n)+$/);
  });

  test('flushLogs empties the files (rotated ones too); logFiles: false writes none; bad options are refused', async () => {
    const dir = stateDir();
    const rt = await startRuntime({ stateDir: dir, logFiles: { maxBytes: 1024, keep: 1 } });
    const ws = await rt.createWorkspace({ label: 'flush' });
    // A second burst once the first is in the file (1005 bytes each): together past maxBytes,
    // so the second rotates the file, however late a loaded machine reads them.
    const gate = path.join(dir, 'gate');
    const script = `seq 1000 1200; while [ ! -e '${gate}' ]; do sleep 0.01; done; seq 1000 1200`;
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', script], label: 'seq' });
    const out = `seq.${cmd.commandKey}.out.log`;
    await pollUntil(() => (existsSync(path.join(dir, 'logs', ws.id, out)) ? statSync(path.join(dir, 'logs', ws.id, out)).size : 0), (size) => size > 0, 'the first burst in the file');
    writeFileSync(gate, '');
    await reach(cmd, ['exited']);
    await pollUntil(() => filesOf(dir, ws.id), (names) => names.includes(`${out}.1`), 'a rotation');
    await ws.flushLogs('seq');
    assert.equal((await ws.logs('seq')).length, 0);
    assert.ok(!filesOf(dir, ws.id).includes(`${out}.1`));
    await rt.flushLogs();

    const quiet = stateDir();
    const rt2 = await startRuntime({ stateDir: quiet, logFiles: false });
    const ws2 = await rt2.createWorkspace({ label: 'nofiles' });
    const echo = await ws2.run({ exec: '/bin/echo', argv: ['hi'], label: 'echo' });
    await reach(echo, ['exited']);
    assert.equal((await ws2.logs('echo')).toString(), 'hi\n', 'from the rings');
    assert.equal(existsSync(path.join(quiet, 'logs')), false);

    for (const logFiles of [{ maxBytes: 10 }, { keep: -1 }, { colour: true }, 'yes']) {
      await assert.rejects(startRuntime({ logFiles: logFiles as never }), (e: unknown) => isShumaError(e) && e.code === 'INVALID_ARGUMENT');
    }
  });
});
