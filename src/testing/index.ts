export { ManualClock } from './manual-clock.js';
export {
  pipelineModelPaths,
  pipelineModelPath,
  runPipelineModelPath,
  pipelineModelMachine,
  pipelineModelEvents,
  pipelineModelInput,
  pipelineExpectation,
  describeModelEvent,
  type PipelineModelEvent,
  type PipelineModelContext,
  type PipelineModelEventInput,
  type PipelineModelOptions,
  type PipelineModelPath,
  type PipelineModelStep,
  type PipelineExpectation,
  type PipelineModelRun,
  type RunPipelineModelOptions,
} from './model-based.js';
export { modelPaths, type ModelPath, type ModelStep, type ModelPathsOptions, type ModelGraphInfo } from './model-paths.js';
export { PuppetStage, puppetReady, type Puppet, type PuppetOptions } from './puppets.js';
export { ActorWatch, stateName } from './model-watch.js';
