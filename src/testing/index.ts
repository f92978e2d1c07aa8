export { ManualClock } from './manual-clock.js';
export { pipelineModelMachine, type PipelineModelEvent, type PipelineModelContext } from './pipeline-model.js';
export { pipelineModelEvents, pipelineModelInput, type PipelineModelOptions } from './pipeline-model-events.js';
export {
  pipelineModelPaths,
  pipelineModelPath,
  pipelineExpectation,
  describeModelEvent,
  type PipelineModelEventInput,
  type PipelineModelPath,
  type PipelineModelStep,
  type PipelineExpectation,
} from './pipeline-model-paths.js';
export { runPipelineModelPath, type PipelineModelRun, type RunPipelineModelOptions } from './pipeline-model-runner.js';
export { modelPaths, type ModelPath, type ModelStep, type ModelPathsOptions, type ModelGraphInfo } from './model-paths.js';
export { PuppetStage, puppetReady, type Puppet, type PuppetOptions } from './puppets.js';
export { ActorWatch, stateName } from './model-watch.js';
