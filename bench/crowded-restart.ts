// (m) A restart in a crowded workspace: the same crash loop beside 200 live siblings, against
// the same loop alone. What a change costs must not grow with how many commands the workspace
// holds (each change once sent the workspace's whole persisted tree: 16 ms a cycle at 200).
import type { Runtime } from '../src/index.js';
import { progress, type Line } from './measure.js';

const SIBLINGS = 200;
const RESTARTS = 300;

async function msPerRestart(rt: Runtime, siblings: number): Promise<number> {
  const ws = await rt.createWorkspace({ label: `crowded-${siblings}` });
  try {
    for (let i = 0; i < siblings; i++) await ws.run({ exec: 'sleep', argv: ['3600'] });
    const started = performance.now();
    const loop = await ws.run({ exec: '/bin/false', restart: { onFailure: true, backoffMs: 0, maxRestarts: RESTARTS } });
    await new Promise<void>((resolve) => loop.subscribe((s) => s.status === 'done' && resolve()));
    return (performance.now() - started) / RESTARTS;
  } finally {
    await ws.stop({ graceMs: 0 });
  }
}

export async function crowdedRestartSection(rt: Runtime): Promise<Line[]> {
  progress(`restart /bin/false ${RESTARTS} times beside ${SIBLINGS} live commands, and alone`);
  const alone: number[] = [];
  const crowded: number[] = [];
  // Alternated, best of two each: the machine's other work weighs on both alike.
  for (let round = 0; round < 2; round++) {
    alone.push(await msPerRestart(rt, 0));
    crowded.push(await msPerRestart(rt, SIBLINGS));
  }
  return [
    { heading: `(m) a restart cycle beside ${SIBLINGS} live commands in the same workspace  vs  alone` },
    { what: `crash loop, ${RESTARTS} restarts, per cycle`, unit: 'ms', shuma: Math.min(...crowded), baseline: Math.min(...alone) },
  ];
}
