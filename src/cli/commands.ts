// The subcommands of `shuma`, by name. Each module is loaded only when its command runs: a client
// command (`ps`, `logs`…) then starts without loading the runtime, which is most of its latency.
// A new subcommand is one line here (and its usage in main.ts's HELP); `shuma <name> --help` must
// print its usage, which test/cli-usage.test.ts checks for every name in this table.
type Command = (args: readonly string[]) => Promise<number>;

/** Every subcommand, loaded when it runs; `shuma <name> --help` prints its usage. */
export const COMMANDS: Record<string, () => Promise<Command>> = {
  up: async () => (await import('./up-command.js')).upCommand,
  daemon: async () => (await import('./daemon-command.js')).daemonCommand,
  ps: async () => (await import('./ps.js')).ps,
  run: async () => (await import('./run.js')).run,
  logs: async () => (await import('./logs.js')).logs,
  stop: async () => (await import('./stop.js')).stop,
  stats: async () => (await import('./stats.js')).stats,
  top: async () => (await import('./stats.js')).top,
  pipeline: async () => (await import('./pipeline.js')).pipeline,
  health: async () => (await import('./health.js')).health,
  apply: async () => (await import('./apply.js')).apply,
  why: async () => (await import('./why.js')).why,
  describe: async () => (await import('./describe.js')).describe,
  kill: async () => (await import('./kill.js')).kill,
  startup: async () => (await import('./startup.js')).startup,
  inspect: async () => (await import('./inspect.js')).inspect,
  restart: async () => (await import('./restart.js')).restart,
  delete: async () => (await import('./delete.js')).deleteCommand,
  flush: async () => (await import('./flush.js')).flush,
};
