// Model-based tests of your own pipeline spec (docs/model-based-testing.md): paths generated
// from a model of what the pipeline actor should do with this spec's shape, discern rule and
// restart policy, each driven on a real runtime with real processes and checked at every step.
//
//   npm run build && node dist/examples/model-based-pipeline.js [maxPaths]
//
// In a test suite, make one test per path instead (node:test shown; any runner will do):
//
//   for (const path of pipelineModelPaths(spec)) test(path.name, () => runPipelineModelPath(rt, clock, spec, path));
import { createRuntime, type PipelineSpec } from '../src/index.js';
import { ManualClock, pipelineModelPath, pipelineModelPaths, runPipelineModelPath } from '../src/testing/index.js';

// The spec as you would run it. The runner keeps its shape (edges, tap, discern, restart) and
// replaces each node's program with a puppet whose exit the test decides.
const spec: PipelineSpec = {
  label: 'thumbnails',
  workspace: 'any: each path runs in a workspace of its own',
  nodes: [
    { label: 'list', exec: 'find', argv: ['/srv/photos', '-name', '*.jpg'] },
    { label: 'resize', exec: 'xargs', argv: ['-n1', 'convert-thumb'] },
  ],
  edges: [{ from: 'list', to: 'resize' }],
  restart: { onFailure: true, backoffMs: 250, maxBackoffMs: 1000, maxRestarts: 2 },
};

const maxPaths = Number(process.argv[2] ?? 20);
const paths = pipelineModelPaths(spec, { maxPaths });
const { info } = paths;
console.log(
  `${paths.length} paths; the model has ${info.states} states (${info.abstractStates} abstract), ` +
    `the paths cover ${info.coveredStates} of them and ${info.coveredTransitions} of ${info.abstractTransitions} transitions`,
);

// A scenario of your own: the model says what the actor must show after each event.
const handWritten = pipelineModelPath(spec, [
  { type: 'RUN' },
  { type: 'EXIT', node: 'resize', code: 0 },
  { type: 'SIGPIPE', node: 'list' }, // the reader is gone: not a failure of `list`
]);
console.log(`by hand: ${handWritten.name} ⇒ ${handWritten.steps.at(-1)!.expect.state}`);

// Time is a ManualClock: backoffs and graces fire when a step moves it, never on their own.
const clock = new ManualClock();
const rt = await createRuntime({ clock });
let failed = 0;
try {
  for (const path of [handWritten, ...paths]) {
    const started = Date.now();
    try {
      const run = await runPipelineModelPath(rt, clock, spec, path);
      const states = run.steps.map((step) => step.expect.state || '(none)').join(' → ');
      console.log(`ok   ${String(Date.now() - started).padStart(4)} ms  ${path.name}\n       ${states}`);
    } catch (error) {
      failed++;
      console.log(`FAIL ${String(Date.now() - started).padStart(4)} ms  ${path.name}\n       ${(error as Error).message}`);
    }
  }
} finally {
  await rt.shutdown({ graceMs: 0 });
}
process.exitCode = failed === 0 ? 0 : 1;
