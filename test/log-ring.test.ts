import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LogRing } from '../src/host/processes/log-ring.js';
import { lastLines } from '../src/protocol/log-lines.js';
import { startRuntime } from './helpers.js';

describe('LogRing', () => {
  test('keeps everything below capacity, in order', () => {
    const ring = new LogRing(16);
    ring.write(Buffer.from('abc'));
    ring.write(Buffer.from('def'));
    assert.equal(ring.tail().toString(), 'abcdef');
    assert.equal(ring.tail(2).toString(), 'ef');
    assert.equal(ring.total, 6);
  });

  test('keeps the last `capacity` bytes across wraps, whatever the chunk sizes', () => {
    const capacity = 10;
    const ring = new LogRing(capacity);
    let all = '';
    for (let i = 0; i < 200; i++) {
      const chunk = String.fromCharCode(97 + (i % 26)).repeat((i * 7) % 13);
      all += chunk;
      ring.write(Buffer.from(chunk));
      assert.equal(ring.tail().toString(), all.slice(-capacity));
      assert.equal(ring.tail(3).toString(), all.slice(-capacity).slice(-3));
    }
    assert.equal(ring.total, all.length);
  });

  test('reads straight into region() keep the same bytes as write() would, across wraps', () => {
    const capacity = 10;
    const direct = new LogRing(capacity);
    let all = '';
    for (let i = 0; i < 200; i++) {
      const chunk = Buffer.from(String.fromCharCode(97 + (i % 26)).repeat(1 + ((i * 7) % 9)));
      all += chunk.toString();
      const region = direct.region();
      if (region === null) {
        // Still growing: the reader writes.
        direct.write(chunk);
      } else {
        // A read fills at most the region: the rest comes with the next read.
        const first = Math.min(region.length, chunk.length);
        chunk.copy(region, 0, 0, first);
        direct.commit(first);
        if (first < chunk.length) {
          const next = direct.region()!;
          const rest = chunk.copy(next, 0, first);
          direct.commit(rest);
          assert.equal(first + rest, chunk.length);
        }
      }
      assert.equal(direct.tail().toString(), all.slice(-capacity));
      assert.equal(direct.tail(4).toString(), all.slice(-4));
    }
    assert.equal(direct.total, all.length);
    assert.equal(new LogRing(0).region(), null);
  });

  test('a chunk larger than the capacity keeps its end', () => {
    const ring = new LogRing(4);
    ring.write(Buffer.from('xy'));
    ring.write(Buffer.from('0123456789'));
    assert.equal(ring.tail().toString(), '6789');
  });

  test('capacity 0 keeps nothing but still counts', () => {
    const ring = new LogRing(0);
    ring.write(Buffer.from('abc'));
    assert.equal(ring.tail().length, 0);
    assert.equal(ring.total, 3);
  });
});

describe('log capture under a flood', () => {
  test('200 MB of output keeps memory bounded and the last bytes exact (seed 7)', async () => {
    const rt = await startRuntime({ logBufferBytes: 1024 * 1024 });
    const ws = await rt.createWorkspace({ label: 'flood' });
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const cmd = await ws.run({
      exec: '/bin/sh',
      argv: ['-c', 'head -c 200000000 /dev/zero | tr "\\0" x; printf END'],
    });
    assert.equal((await cmd.exited).status, 0);
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    const [info] = await ws.commands();
    assert.equal(info?.logBytes, 200_000_003);
    const kept = await ws.logs(cmd.id);
    assert.equal(kept.length, 1024 * 1024);
    assert.equal(kept.subarray(-4).toString(), 'xEND');
    // 1 MiB kept; allow for the allocator's slack, never for 200 MB.
    assert.ok(rssGrowth < 64 * 1024 * 1024, `RSS grew by ${(rssGrowth / 1048576).toFixed(1)} MiB`);
  });
});

describe('the last lines of a ring that let its oldest bytes go', () => {
  test('lastLines leaves out a first line the cut began in the middle of, unless it is all there is', () => {
    const kept = Buffer.from('ne-07\nline-08\nline-09\n');
    assert.equal(lastLines(kept, 10, true).toString(), 'line-08\nline-09\n');
    assert.equal(lastLines(kept, 10).toString(), kept.toString(), 'a whole stream keeps its first line');
    assert.equal(lastLines(kept, 2, true).toString(), 'line-08\nline-09\n');
    assert.equal(lastLines(Buffer.from('part of one long line'), 3, true).toString(), 'part of one long line', 'a single cut line is all there is');
  });

  test('logs({ lines }) of a run whose ring wrapped shows whole lines only', async () => {
    const rt = await startRuntime({ logBufferBytes: 30 });
    const ws = await rt.createWorkspace({ label: 'wrapped-lines' });
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'for i in 01 02 03 04 05 06 07 08 09 10; do echo line-$i; done'] });
    await cmd.exited;
    const raw = (await ws.logs(cmd.id)).toString();
    assert.equal(raw.length, 30, 'the ring kept its last 30 bytes');
    assert.ok(!raw.startsWith('line-'), `the ring's first byte is inside a line: ${JSON.stringify(raw)}`);
    assert.equal((await ws.logs(cmd.id, { lines: 10 })).toString(), 'line-08\nline-09\nline-10\n');
    assert.equal((await ws.logs(cmd.id, { lines: 2 })).toString(), 'line-09\nline-10\n');
  });
});
