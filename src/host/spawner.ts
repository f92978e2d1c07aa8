import type { Readable } from 'node:stream';

// The one door through which the host starts processes. A faster spawner (posix_spawn in an
// addon, or a small spawner process) replaces the Node one behind this interface.

export interface SpawnOrder {
  /** Absolute path of the program, already resolved and checked. */
  file: string;
  /** argv[0] as the user wrote it. */
  argv0: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
}

export interface SpawnedProcess {
  readonly pid: number;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The leader's exit: the run's state. Output may still be arriving. */
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
  /** Every holder of the output pipes has closed them: no more output will come. */
  onOutputEnd(listener: () => void): void;
}

export interface Spawner {
  readonly name: string;
  /**
   * Starts the program as the leader of a new session and process group, so a signal to
   * the group reaches its descendants. Rejects with a ShumaError('SPAWN_FAILED').
   */
  spawn(order: SpawnOrder): Promise<SpawnedProcess>;
}
