// Run by test/grown-edges.test.ts as a user of its own (the pipe allowance is per user): spends
// that user's allowance (fs.pipe-user-pages-soft) on pipes it holds, until the kernel makes new
// pipes with its minimum, then runs a pipeline whose edges the runtime would grow, and prints what
// came out as one JSON line.
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { grownEdges } from '../src/host/spawn/grown-edges.js';
import { createRuntime } from '../src/index.js';

const [python, getPipeSize] = process.argv.slice(2);
if (!python || !getPipeSize) throw new Error('usage: pipe-allowance-spent-child <python> <F_GETPIPE_SZ script>');

const addon = loadSpawnerAddon();
const held: number[] = [];
// Grown pipes spend it 256 pages at a time; once growing is refused, plain ones finish the job.
// growPipe answers the size the kernel left the pipe with: below 64 KiB, it was made over the limit.
let smallPipe = 0;
while (held.length < 20_000 && smallPipe === 0) {
  const [readFd, writeFd] = addon.pipe!();
  held.push(readFd, writeFd);
  const size = addon.growPipe!(writeFd);
  if (size < 64 * 1024) smallPipe = size;
}

const rt = await createRuntime({ workers: 1, statsIntervalMs: 0 });
try {
  const ws = await rt.createWorkspace({ label: 'allowance-spent' });
  const p = await rt.runPipeline({
    label: 'small-pipes',
    workspace: ws.id,
    nodes: [
      { label: 'writer', exec: 'sh', argv: ['-c', `${python} -c '${getPipeSize}' 1 && head -c 4194304 /dev/zero`] },
      { label: 'reader', exec: 'wc', argv: ['-c'] },
    ],
    edges: [{ from: 'writer', to: 'reader' }],
  });
  const result = await p.done;
  const edgeSize = (await ws.logs(p.nodes[0]!.commandId, { stream: 'stderr' })).toString();
  const counted = (await ws.logs(p.nodes[1]!.commandId, { stream: 'stdout' })).toString().trim();
  process.stdout.write(`${JSON.stringify({ smallPipe, ok: result.ok, exits: result.exits, edgeSize, counted, grownAfter: grownEdges() })}\n`);
} finally {
  await rt.shutdown({ graceMs: 0 });
}
