import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { LogRing } from '../src/host/processes/log-ring.js';
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { NativeSpawner } from '../src/host/spawn/native-spawner.js';
import { isAlive, pollUntil, startRuntime } from './helpers.js';

// A captured output that floods (a read fills its pipe) is read by a thread of the addon's
// into a ring of its own (native/capture-ring.c, spawn/flood-capture.ts) while nothing but
// the ring listens. What logs(), ps and the inspector see must be what they would see had every
// byte been read into the ring: these tests hold it to that, on both spawners where it applies.
// `cat` of a file writes 128 KiB at a time into a 64 KiB pipe: its first read fills the pipe,
// so the flood path is taken for sure, whatever the machine's load.

const tmp = mkdtempSync(path.join(tmpdir(), 'shuma-flood-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Numbered lines from `from`, `bytes` long at least: any byte out of place shows. */
function numbered(from: number, bytes: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = from; length < bytes; i++) {
    const line = `line ${i} ${'.'.repeat(i % 37)}\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join(''));
}

function file(name: string, content: Buffer): string {
  const at = path.join(tmp, name);
  writeFileSync(at, content);
  return at;
}

/** The line numbers in a tail (its first line may be cut): each must follow the one before. */
function assertConsecutive(tail: Buffer, what: string): void {
  const lines = tail.toString().split('\n').slice(1, -1);
  assert.ok(lines.length > 0, `${what}: no whole line`);
  let previous = -1;
  for (const line of lines) {
    const n = Number(/^line (\d+) \.*$/.exec(line)?.[1] ?? NaN);
    assert.ok(Number.isInteger(n), `${what}: a line out of shape: ${JSON.stringify(line.slice(0, 60))}`);
    if (previous >= 0) assert.equal(n, previous + 1, `${what}: line ${n} follows line ${previous}`);
    previous = n;
  }
}

const native = (() => {
  try {
    return loadSpawnerAddon().captureStart ? false : 'the addon was built before its capture ring';
  } catch (error) {
    return `the native spawner does not load here: ${(error as Error).message}`;
  }
})();

describe('a flooded capture', () => {
  test('keeps the exact last bytes of stdout and of stderr apart, and counts every byte (odd ring size)', async () => {
    const capacity = 200_003;
    const rt = await startRuntime({ logBufferBytes: capacity });
    const ws = await rt.createWorkspace({ label: 'flood-exact' });
    const out = numbered(0, 12_000_000);
    const err = numbered(5_000_000, 3_000_000);
    const outFile = file('exact-out', out);
    const errFile = file('exact-err', err);
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', `cat ${outFile}; cat ${errFile} >&2; printf END`] });
    assert.equal((await cmd.exited).status, 0);
    const wholeOut = Buffer.concat([out, Buffer.from('END')]);
    assert.deepEqual(await ws.logs(cmd.id, { stream: 'stdout' }), wholeOut.subarray(-capacity));
    assert.deepEqual(await ws.logs(cmd.id, { stream: 'stderr' }), err.subarray(-capacity));
    assert.deepEqual(await ws.logs(cmd.id, { stream: 'stdout', tailBytes: 1000 }), wholeOut.subarray(-1000));
    const [info] = await ws.commands();
    assert.equal(info?.logBytes, wholeOut.length + err.length);
  });

  test('looked at while it floods, the ring is always a whole, current tail, and stopping it leaves nothing', async () => {
    const rt = await startRuntime({ logBufferBytes: 256 * 1024 });
    const ws = await rt.createWorkspace({ label: 'flood-live' });
    // The file starts the flood; the endless loop after it goes on flooding, line by line.
    const start = file('live-start', numbered(0, 4_000_000));
    const script = `cat ${start}; i=1000000; while :; do echo "line $i "; i=$((i+1)); done`;
    const cmd = await ws.run({ label: 'flood', exec: '/bin/sh', argv: ['-c', script] });
    let seen = 0;
    for (let look = 0; look < 5; look++) {
      // Each look waits for more output than the last one saw, and for more than the ring holds.
      const more = (b: number) => b > seen + 100_000 && b > 300_000;
      const bytes = await pollUntil(async () => (await ws.commands())[0]?.logBytes ?? 0, more, 'more output');
      const tail = await ws.logs(cmd.id, { stream: 'stdout' });
      assert.equal(tail.length, 256 * 1024);
      // The loop's lines follow the file's: the look may straddle them, never mix them up.
      const loopPart = tail.toString().includes('line 1000000 \n') ? tail.subarray(tail.indexOf('line 1000000 \n') - 1) : tail;
      if (loopPart === tail) assertConsecutive(tail, `look ${look}`);
      else assertConsecutive(loopPart, `look ${look}`);
      const after = (await ws.commands())[0]!.logBytes;
      assert.ok(after >= bytes, `logBytes went back from ${bytes} to ${after}`);
      seen = after;
    }
    await ws.stopCommand('flood', { graceMs: 0 });
    await cmd.exited;
    assert.equal(isAlive(cmd.pid), false);
  });
});

describe('a flooded capture handed back to the stream (native spawner)', { skip: native }, () => {
  test('a listener that comes mid-flood hears every byte from there on, after what the ring kept', async () => {
    const spawner = new NativeSpawner();
    const first = numbered(0, 6_000_000);
    const then = numbered(900_000, 6_000_000);
    const firstFile = file('handover-1', first);
    const thenFile = file('handover-2', then);
    // The program floods, then waits for a line on stdin before it floods again.
    const child = await spawner.spawn({
      file: '/bin/sh',
      argv0: 'sh',
      args: ['-c', `cat ${firstFile}; read go; cat ${thenFile}`],
      env: { PATH: '/usr/bin:/bin' },
      cwd: '/',
      stdio: { stdin: 'pipe' },
    });
    const exited = new Promise<void>((resolve) => child.onExit(() => resolve()));
    try {
      const ring = new LogRing(100_000);
      child.captureInto!('stdout', ring);
      child.captureInto!('stderr', new LogRing(1024));
      await pollUntil(() => ring.total, (total) => total === first.length, 'the first flood captured');
      assert.deepEqual(ring.tail(), first.subarray(-100_000));
      const heard: Buffer[] = [];
      child.stdout!.on('data', (chunk: Buffer) => heard.push(Buffer.from(chunk)));
      child.stdin!.end('go\n');
      await new Promise<void>((resolve) => child.onOutputEnd(resolve));
      assert.deepEqual(Buffer.concat(heard), then);
      assert.equal(ring.total, first.length + then.length);
      assert.deepEqual(ring.tail(), then.subarray(-100_000));
    } finally {
      // A failure above leaves the program waiting on its stdin: it goes with the test.
      if (isAlive(child.pid)) process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  });
});

describe('LogRing with bytes kept outside it', () => {
  test('absorb: what came between is gone, what was kept before too; pull runs before every read', () => {
    const ring = new LogRing(8);
    ring.write(Buffer.from('abc'));
    let pulls = 0;
    ring.keepOutside(() => {
      pulls++;
      ring.absorb(Buffer.from('xy'), 2);
    });
    assert.equal(ring.total, 5);
    assert.equal(ring.tail().toString(), 'abcxyxy');
    assert.equal(pulls, 2);
    ring.keepOutside(null);
    // 10 bytes came, the last 4 are known: 'abcxyxy' is no longer a tail of the stream.
    ring.absorb(Buffer.from('6789'), 10);
    assert.equal(ring.tail().toString(), '6789');
    assert.equal(ring.total, 17);
    assert.equal(ring.keptBytes, 4);
  });
});
