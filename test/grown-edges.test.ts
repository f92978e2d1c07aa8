// An untapped pipeline's edges are kernel pipes between its nodes, grown to 1 MiB as they are
// made (fewer wake-ups of a fast writer and its reader), within a budget over the process so that
// the user's pipe allowance is never spent on them (spawn/grown-edges.ts).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import {
  GROWN_EDGE_BYTES,
  GROWN_EDGES_MAX,
  grownEdges,
  grownEdgesAllowed,
  grownEdgesBudget,
  growEdges,
} from '../src/host/spawn/grown-edges.js';
import { closePipes, openPipes } from '../src/host/spawn/kernel-pipes.js';
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { startRuntime } from './helpers.js';

const PYTHON = '/usr/bin/python3';
/** F_GETPIPE_SZ, as python's fcntl module knows it on Linux. */
const GET_PIPE_SIZE = 'import fcntl, sys; sys.stderr.write(str(fcntl.fcntl(int(sys.argv[1]), 1032)))';
/** A uid nobody on a test machine uses: its pipe allowance is the test's alone to spend. */
const SPARE_UID = 61_717;

const skip = (() => {
  try {
    return loadSpawnerAddon().growPipe ? false : 'the addon was built before growPipe (npm run install)';
  } catch {
    return 'the native addon does not load here: pipes are FIFOs and keep their size';
  }
})();

/** The size of the pipe `fd` of this process, as another process sees it. */
function pipeSize(fd: number): number {
  const result = spawnSync(PYTHON, ['-c', GET_PIPE_SIZE, '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
  return Number(result.stderr.toString());
}

describe('grown edges of untapped pipelines', { skip }, () => {
  test('a node writes into a 1 MiB pipe; the budget is given back once the nodes have exited', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'grown-edges' });
    const p = await rt.runPipeline({
      label: 'pipe-size',
      workspace: ws.id,
      nodes: [
        { label: 'writer', exec: PYTHON, argv: ['-c', GET_PIPE_SIZE, '1'] },
        { label: 'reader', exec: 'cat' },
      ],
      edges: [{ from: 'writer', to: 'reader' }],
    });
    const result = await p.done;
    assert.equal(result.ok, true, JSON.stringify(result.exits));
    assert.equal((await ws.logs(p.nodes[0]!.commandId, { stream: 'stderr' })).toString(), String(GROWN_EDGE_BYTES));
    assert.equal(grownEdges(), 0);
  });

  test('the budget is a quarter of the soft pipe allowance, at most 16 pipes', () => {
    assert.equal(grownEdgesBudget(16_384), GROWN_EDGES_MAX); // the kernel's default: 64 MiB
    assert.equal(grownEdgesBudget(0), GROWN_EDGES_MAX); // 0: no soft limit
    assert.equal(grownEdgesBudget(4096), 4);
    assert.equal(grownEdgesBudget(1023), 0);
    assert.equal(grownEdgesBudget(1 << 20), GROWN_EDGES_MAX);
  });

  test('at most the budget grown at once; beyond, the kernel\'s default; the budget is given back once', async () => {
    const budget = grownEdgesAllowed();
    const pipes = await openPipes(budget + 2);
    try {
      const giveBack = growEdges(pipes);
      assert.equal(grownEdges(), budget);
      for (const i of [0, budget - 1]) if (i >= 0) assert.equal(pipeSize(pipes[i]!.readFd), GROWN_EDGE_BYTES);
      assert.equal(pipeSize(pipes[budget]!.readFd), 64 * 1024);
      const more = await openPipes(1);
      try {
        growEdges(more)();
        assert.equal(pipeSize(more[0]!.readFd), 64 * 1024);
      } finally {
        closePipes(more);
      }
      giveBack();
      giveBack();
      assert.equal(grownEdges(), 0);
    } finally {
      closePipes(pipes);
    }
  });

  test(
    'a user past the soft allowance gets pipes of the kernel\'s minimum: the pipeline runs on them, nothing is counted',
    {
      skip:
        process.getuid?.() !== 0
          ? 'needs root, to run as a user of its own: spending this user\'s pipe allowance would shrink every other pipe it makes meanwhile'
          : false,
    },
    async () => {
      const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pipe-allowance-spent-child.js');
      // Its runtime's scratch (pipes' FIFOs, sockets) where that user may write.
      const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-allowance-'));
      try {
        spawnSync('chmod', ['1777', scratch]);
        const proc = spawn(process.execPath, [child, PYTHON, GET_PIPE_SIZE], {
          uid: SPARE_UID,
          gid: SPARE_UID,
          cwd: scratch,
          env: { ...process.env, TMPDIR: scratch, HOME: scratch },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
        const code = await new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
        assert.equal(code, 0, err);
        const report = JSON.parse(out) as { smallPipe: number; ok: boolean; exits: unknown; edgeSize: string; counted: string; grownAfter: number };
        assert.ok(report.smallPipe < 64 * 1024, `the allowance was spent: new pipes have ${report.smallPipe} bytes`);
        assert.equal(report.ok, true, JSON.stringify(report.exits));
        assert.equal(Number(report.edgeSize), report.smallPipe, 'the edge kept the size the kernel made it with');
        assert.equal(report.counted, '4194304');
        assert.equal(report.grownAfter, 0);
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    },
  );
});
