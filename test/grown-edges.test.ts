// An untapped pipeline's edges are kernel pipes between its nodes, grown to 1 MiB as they are
// made (fewer wake-ups of a fast writer and its reader), within a budget over the runtime so that
// the user's pipe allowance is never spent on them (spawn/grown-edges.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { GROWN_EDGE_BYTES, GROWN_EDGES_BUDGET, grownEdges, growEdges } from '../src/host/spawn/grown-edges.js';
import { closePipes, openPipes } from '../src/host/spawn/kernel-pipes.js';
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { startRuntime } from './helpers.js';

const PYTHON = '/usr/bin/python3';
/** F_GETPIPE_SZ, as python's fcntl module knows it on Linux. */
const GET_PIPE_SIZE = 'import fcntl, sys; sys.stderr.write(str(fcntl.fcntl(int(sys.argv[1]), 1032)))';

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

  test(`at most ${GROWN_EDGES_BUDGET} grown at once; beyond, the kernel's default; the budget is given back once`, async () => {
    const pipes = await openPipes(GROWN_EDGES_BUDGET + 2);
    try {
      const giveBack = growEdges(pipes);
      assert.equal(grownEdges(), GROWN_EDGES_BUDGET);
      assert.equal(pipeSize(pipes[0]!.readFd), GROWN_EDGE_BYTES);
      assert.equal(pipeSize(pipes[GROWN_EDGES_BUDGET - 1]!.readFd), GROWN_EDGE_BYTES);
      assert.equal(pipeSize(pipes[GROWN_EDGES_BUDGET]!.readFd), 64 * 1024);
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
});
