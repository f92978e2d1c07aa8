import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { StatsHistory } from '../src/host/main-actors/stats-history.js';
import { LazyMap, LazySet } from '../src/host/registry/lazy-collections.js';
import { lazyDeferred } from '../src/host/registry/lazy-deferred.js';
import { coreOf } from '../src/host/runtime.js';
import type { WorkspaceStats } from '../src/protocol/stats.js';
import { startRuntime } from './helpers.js';

// What makes an idle workspace cheap on the main thread (bench/workspaces.ts measures how
// cheap) must not change what anyone reads: these check the cheap forms read as the full ones.

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function sample(at: number, processes = 0): WorkspaceStats {
  return { at, source: 'proc', rssBytes: 0, cpuUsec: 0, cpuPercent: at === 0 ? null : 0, processes, commandsAlive: 0, commandsTotal: 0 };
}

describe('an idle workspace costs little and reads the same', () => {
  test('the stats history gives back every sample as pushed, the newest 64, in order, whatever their likeness', () => {
    const history = new StatsHistory(64);
    const pushed: WorkspaceStats[] = [];
    for (let i = 0; i < 100; i++) {
      // Runs of alike samples (an idle stretch) between ones that differ.
      const stats = i % 10 === 0 ? sample(1_700_000_000_000 + i, i) : sample(1_700_000_000_000 + i);
      pushed.push(stats);
      history.push(stats);
    }
    assert.equal(history.length, 64);
    assert.deepEqual(history.read(0), pushed.slice(-64));
    assert.deepEqual(history.read(5), pushed.slice(-5));
    assert.deepEqual(history.read(1000), pushed.slice(-64));
    // The key order of a sample is as before (at first): JSON and the CLI print it as it comes.
    assert.deepEqual(Object.keys(history.read(1)[0]!), Object.keys(pushed[99]!));
    // A sample read is the caller's: changing it changes nothing kept.
    history.read(1)[0]!.processes = 99;
    assert.equal(history.read(1)[0]!.processes, 0);
  });

  test('a lazy Set and Map act as Set and Map, before and after their first entry', () => {
    const set = new LazySet<number>();
    assert.equal(set.size, 0);
    assert.equal(set.has(1), false);
    assert.equal(set.delete(1), false);
    assert.deepEqual([...set], []);
    set.add(1).add(2).add(1);
    assert.deepEqual([...set], [1, 2]);
    assert.deepEqual([...set.entries()], [[1, 1], [2, 2]]);
    const seen: number[] = [];
    set.forEach((value, again, whole) => {
      assert.equal(value, again);
      assert.equal(whole, set);
      seen.push(value);
    });
    assert.deepEqual(seen, [1, 2]);
    assert.equal(set.delete(1), true);
    assert.equal(set.size, 1);
    set.clear();
    assert.equal(set.size, 0);

    const map = new LazyMap<string, number>();
    assert.equal(map.get('a'), undefined);
    assert.deepEqual([...map], []);
    assert.deepEqual([...map.keys()], []);
    map.set('a', 1).set('b', 2);
    assert.deepEqual([...map], [['a', 1], ['b', 2]]);
    assert.deepEqual([...map.values()], [1, 2]);
    assert.equal(map.has('b'), true);
    assert.equal(map.delete('a'), true);
    assert.deepEqual(Object.fromEntries(map), { b: 2 });
  });

  test('a lazy deferred settles once, whether its promise was asked for before or after', async () => {
    const early = lazyDeferred<number>();
    const promise = early.promise;
    assert.equal(early.settled, false);
    early.resolve(1);
    early.resolve(2);
    early.reject(new Error('late'));
    assert.equal(early.settled, true);
    assert.equal(await promise, 1);
    assert.equal(early.promise, promise);

    const late = lazyDeferred<number>();
    late.resolve(3);
    assert.equal(await late.promise, 3);

    const failed = lazyDeferred<number>();
    failed.reject(new Error('no'));
    failed.resolve(4);
    // Asked for after it failed: the caller hears the failure (and nothing was unhandled before).
    await assert.rejects(failed.promise, /no/);
  });

  test("an idle workspace's persisted snapshot holds its mirror's context, and a restore brings back the same", async () => {
    const stateDir = path.join(mkdtempSync(path.join(tmpdir(), 'shuma-idle-')), 'state');
    dirs.push(path.dirname(stateDir));
    const rt = await startRuntime({ stateDir });
    const ws = await rt.createWorkspace({ label: 'idle', ttlMs: 3_600_000, env: { ONLY_HERE: '1' } });
    const entry = coreOf(rt).registry.get(ws.id)!;
    // The worker sends the persisted snapshot in the same batch as the snapshot that started it.
    assert.notEqual(entry.persisted, null);
    const persisted = entry.persisted as { context: unknown };
    assert.equal(persisted.context, entry.snapshot.context, 'one context, not two equal copies');
    assert.equal(entry.env.ONLY_HERE, '1');
    const before = ws.getSnapshot();
    await rt.shutdown({ graceMs: 0 });

    const again = await startRuntime({ stateDir });
    const back = again.workspace(ws.id);
    assert.ok(back, 'restored under its own id');
    const restored = back.getSnapshot();
    assert.equal(restored.value, before.value);
    assert.deepEqual(restored.context, { ...before.context, stampedAt: restored.context.stampedAt });
    // A change after the restore is its own: the shared forms were never written through.
    const other = await again.createWorkspace({ label: 'other' });
    assert.notEqual(other.getSnapshot().context.id, back.getSnapshot().context.id);
    assert.equal(back.getSnapshot().context.label, 'idle');
    await again.shutdown({ graceMs: 0 });
  });
});
