// (e) Pipeline throughput: 2 GiB through `head -c 2G /dev/zero | cat | cat`, side by side in one
// run: bash, shuma untapped (kernel pipes between the nodes, bytes never in JavaScript) and
// shuma tapped (every edge pumped through the runtime, metered, published on a flow socket).
//
// Two endings of the same 3-node pipeline:
// - the last `cat` captured: its stdout goes to its log ring (1 MiB kept) like any command's,
//   so 2 GiB also cross a socketpair into Node — a cost bash's `> /dev/null` does not have;
// - the last node `sh -c 'cat > /dev/null'`: the same ending as bash, so the ratio is the cost
//   of the pipes between the nodes alone.
import { spawn } from 'node:child_process';
import { createRuntime, type PipelineSpec, type Runtime } from '../src/index.js';
import { now, progress, type Line } from './measure.js';

const BYTES = 2 * 2 ** 30;
const GIB = 2 ** 30;

type Ending = 'captured' | 'devnull';

function bashRun(): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = now();
    const child = spawn('bash', ['-c', 'head -c 2G /dev/zero | cat | cat > /dev/null'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(now() - start) : reject(new Error(`bash exited ${code}`))));
  });
}

function spec(workspace: string, tap: boolean, ending: Ending): PipelineSpec {
  return {
    label: `throughput-${tap ? 'tapped' : 'untapped'}-${ending}`,
    workspace,
    tap,
    nodes: [
      { label: 'head', exec: 'head', argv: ['-c', '2G', '/dev/zero'] },
      { label: 'cat1', exec: 'cat' },
      ending === 'captured' ? { label: 'cat2', exec: 'cat' } : { label: 'cat2', exec: 'sh', argv: ['-c', 'cat > /dev/null'] },
    ],
    edges: [
      { from: 'head', to: 'cat1' },
      { from: 'cat1', to: 'cat2' },
    ],
  };
}

async function shumaRun(rt: Runtime, wsId: string, tap: boolean, ending: Ending): Promise<number> {
  const start = now();
  const pipeline = await rt.runPipeline(spec(wsId, tap, ending));
  const result = await pipeline.done;
  const ms = now() - start;
  if (!result.ok) throw new Error(`pipeline failed: ${JSON.stringify(result.exits)}`);
  if (tap) {
    const crossed = (await pipeline.flows()).map((flow) => flow.bytes);
    if (crossed.some((bytes) => bytes !== BYTES)) throw new Error(`tapped flows counted ${crossed.join(', ')} bytes`);
  }
  return ms;
}

const gibPerSec = (ms: number): number => BYTES / GIB / (ms / 1000);

/**
 * Every variant runs once per round, interleaved, so that a slow spell of the machine (other
 * work shares its cores) hits all of them; the best round of each counts.
 */
export async function pipelineThroughputSection(rounds = 3): Promise<Line[]> {
  const rt = await createRuntime();
  const variants: Array<{ what: string; tap: boolean; ending: Ending }> = [
    { what: 'untapped, last cat captured in its ring', tap: false, ending: 'captured' },
    { what: 'tapped, last cat captured in its ring', tap: true, ending: 'captured' },
    { what: "untapped, last node sh -c 'cat > /dev/null'", tap: false, ending: 'devnull' },
    { what: "tapped, last node sh -c 'cat > /dev/null'", tap: true, ending: 'devnull' },
  ];
  const best = new Map<string, number>();
  const keep = (key: string, ms: number) => best.set(key, Math.min(best.get(key) ?? Infinity, ms));
  try {
    const ws = await rt.createWorkspace({ label: 'throughput' });
    for (let round = 1; round <= rounds; round++) {
      progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: bash`);
      keep('bash', await bashRun());
      for (const variant of variants) {
        progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: shuma ${variant.what}`);
        keep(variant.what, await shumaRun(rt, ws.id, variant.tap, variant.ending));
      }
    }
    await ws.stop({ graceMs: 0 });
  } finally {
    await rt.shutdown({ graceMs: 0 });
  }
  const bash = gibPerSec(best.get('bash')!);
  return [
    { heading: "(e) pipeline throughput: 2 GiB through head -c 2G /dev/zero | cat | cat  vs  bash (… | cat > /dev/null)" },
    ...variants.map((variant) => ({
      what: `2 GiB pipeline, ${variant.what}`,
      unit: 'GiB/s',
      shuma: gibPerSec(best.get(variant.what)!),
      baseline: bash,
    })),
  ];
}
