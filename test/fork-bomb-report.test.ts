// A fork bomb under a cgroup pids limit is contained by the kernel, which refuses the forks
// (the count never passes pids.max): shuma reports those refusals (pids.events `max`, v1 and v2)
// in quota() and stats(), and `quota: { nproc: 'kill' }` acts on them; why() tells the kill.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { detectCgroups } from '../src/host/cgroup/cgroups.js';
import { pollUntil, startRuntime, stateOf, waitFor, waitForOutput } from './helpers.js';

const support = detectCgroups();
const skip = process.getuid?.() !== 0 ? 'needs root to write cgroups' : support.version === null ? `no cgroups here: ${support.reason}` : false;
// perl: dash gives up at the first failed fork, perl keeps trying.
const BOMB = { exec: '/usr/bin/perl', argv: ['-e', 'print "go\\n"; $|=1; while (1) { fork; select(undef,undef,undef,0.01) }'] };

describe('a fork bomb in a workspace with a cgroup', { skip }, () => {
  test("quota() and stats() report the limit reached and the forks refused ('log')", async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'bomb-log', cgroup: true, limits: { nproc: 16 }, quota: { nproc: 'log' } });
    assert.equal((await ws.quota()).forksRefused, 0, 'none refused before the bomb');
    const bomb = await ws.run(BOMB);
    await waitForOutput(ws, bomb.id, 'go');
    const report = await pollUntil(() => ws.quota(), (q) => (q.forksRefused ?? 0) > 0, 'forks refused');
    assert.equal(report.nprocLimit, 16);
    assert.match(report.breaches.join('\n'), /^nproc: limit 16 reached \(\d+ alive\), \d+ forks? refused$/m);
    const stats = await ws.stats();
    assert.ok((stats.forksRefused ?? 0) >= report.forksRefused!, 'stats() counts them too');
    assert.ok(stats.processes <= 16, 'contained');
    assert.equal(stateOf(ws.getSnapshot()), 'running', "'log' does not stop the workspace");
    await ws.stop({ graceMs: 0 });
  });

  test("quota: { nproc: 'kill' } stops the workspace once forks are refused; why() says why", async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'bomb-kill', cgroup: true, limits: { nproc: 16 }, quota: { nproc: 'kill' } });
    const bomb = await ws.run(BOMB);
    await waitForOutput(ws, bomb.id, 'go');
    const stopped = waitFor(ws.subscribe.bind(ws), (s) => stateOf(s) === 'stopped', 'the quota stop');
    // Sampled on demand until the kernel has refused a fork: that sample acts.
    const sampling = setInterval(() => void ws.stats().catch(() => undefined), 20);
    const final = await stopped.finally(() => clearInterval(sampling));
    assert.equal(final.context.stopReason, 'quota');
    assert.match(String(final.context.quotaBreach), /^nproc: limit 16 reached \(\d+ alive\), \d+ forks? refused$/);
    const trail = (await ws.why(bomb.id)).map((e) => e.text).join('\n');
    assert.match(trail, /quota breach: nproc: limit 16 reached .* refused → kill/);
  });
});
