// The state the snapshot benchmark writes: 1,000 or 10,000 workspaces shaped as the runtime
// persists them, each record with its workspace's change count (as collect.ts hands them).
import { monotonicFactory } from 'ulid';
import type { PersistedWorkspace, SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { counted } from '../src/host/persistence/snapshot-encoder.js';

/** One workspace as the runtime would persist it: its spec, its id, its TTL, its actor (~1 KB). */
export function workspaceRecord(id: string, index: number, at: number): Record<string, unknown> {
  return {
    id,
    createdAt: at - index * 1000,
    spec: {
      label: `workspace-${index}`,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: `/home/user${index % 50}`, LANG: 'C.UTF-8', SHUMA_WS: id, LOG_LEVEL: 'info' },
      ttlMs: 3_600_000,
    },
    ttlDeadline: at + 3_600_000,
    actor: persistedActor(id, index, at),
  };
}

/** Shaped like XState's getPersistedSnapshot() of a workspace machine with two commands. */
function persistedActor(id: string, index: number, at: number): Record<string, unknown> {
  const command = (n: number) => ({
    key: `cmd-${n}`,
    label: n === 0 ? 'server' : 'worker',
    argv: ['node', n === 0 ? 'server.js' : 'worker.js', '--port', String(8000 + n)],
    pid: 100_000 + index * 2 + n,
    startTime: 4_000_000 + index,
    restarts: (index + n) % 5,
    backoffUntil: n === 1 ? at + 2_000 : null,
    lastExit: { code: 1, signal: null, status: 1, at: at - 500 },
  });
  return {
    status: 'active',
    value: { running: 'supervising' },
    historyValue: {},
    context: {
      id,
      label: `workspace-${index}`,
      deadlines: { ttlAt: at + 3_600_000, graceUntil: null },
      quota: { memoryBytes: 512 * 2 ** 20, cpuPercent: 50, policy: 'kill' },
      stats: { rssBytes: 48_000_000 + index, cpuMs: 1234.5, samples: [1.5, 2.25, 3, 2.75, 1.25, 0.5] },
      commands: [command(0), command(1)],
    },
    children: {
      'cmd-0': { snapshot: { status: 'active', value: 'running', context: { restarts: 0 } }, src: 'command', syncSnapshot: false },
      'cmd-1': { snapshot: { status: 'active', value: 'backoff', context: { restarts: 2 } }, src: 'command', syncSnapshot: false },
    },
  };
}

export function snapshotData(count: number): SnapshotData {
  const nextId = monotonicFactory();
  const at = Date.now();
  const workspaces = Array.from({ length: count }, (_, index) => counted(workspaceRecord(nextId(), index, at) as unknown as PersistedWorkspace, 0));
  return { runtimeId: nextId(), workspaces, savedPipelines: {} };
}
