// What a command and its workspace tell each other about the group they form: phases up
// (member → workspace), dependency verdicts and group restarts down (workspace → member).
// These stay inside one worker thread (a workspace and its commands share it): no wire type.

/**
 * Where a member stands, as its group sees it. `failing`: it failed and its own policy relaunches
 * it (the moment OTP's strategies and intensity act on); `down`: between runs otherwise.
 */
export type MemberPhase =
  | 'waiting'
  | 'up'
  | 'ready'
  | 'failing'
  | 'down'
  | 'succeeded'
  | 'exited'
  | 'gaveUp'
  | 'failed'
  | 'stopped'
  | 'unmet';

/** member → workspace */
export interface MemberEvent { type: 'MEMBER'; key: string; phase: MemberPhase; at: number }

/** workspace → member: every dependency holds; start. */
export interface DependenciesMetEvent { type: 'DEPENDENCIES_MET'; at: number }
/** workspace → member: a dependency can never hold (it ended, gave up…); never start. */
export interface DependencyFailedEvent { type: 'DEPENDENCY_FAILED'; at: number; detail: string }
/** workspace → member: a sibling failed and the strategy restarts this one too. */
export interface GroupRestartEvent { type: 'GROUP_RESTART'; at: number; cause: string }

/** workspace → member: its failure is within its group's intensity; it may relaunch. */
export interface GroupVerdictEvent { type: 'GROUP_VERDICT'; at: number }

export type GroupEvent = DependenciesMetEvent | DependencyFailedEvent | GroupRestartEvent | GroupVerdictEvent;

/** Phases after which a member never runs again. */
export const FINAL_PHASES: ReadonlySet<MemberPhase> = new Set(['succeeded', 'exited', 'gaveUp', 'failed', 'stopped', 'unmet']);
