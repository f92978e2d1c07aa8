// What a spec says about readiness, dependencies and group supervision, and its checks.
// "Up is not ready" (s6): a command may say how to tell that it serves; others wait for that.

/** One of exec | tcp | http | line | notify, with how often and how patiently to look. */
export interface ReadinessProbe {
  /** A program run in the command's cwd and environment: exit 0 = ready. */
  exec?: string[];
  /** A TCP port on 127.0.0.1 that accepts a connection. */
  tcp?: number;
  /** An http:// or https:// URL answering 2xx. */
  http?: string;
  /** A regular expression matched against each line the command writes to stdout. */
  line?: string;
  /** The command says `READY=1` on the unix datagram socket named by $NOTIFY_SOCKET (sd_notify). */
  notify?: boolean;
  /** Between two probes, from the spawn on (default 1000 ms). exec, tcp and http only. */
  intervalMs?: number;
  /** One probe's longest wait (default 1000 ms). exec, tcp and http only. */
  timeoutMs?: number;
  /** Failed probes in a row that make a ready command unhealthy (default 3). exec, tcp and http only. */
  failureThreshold?: number;
  /**
   * Longest wait from the spawn for the first "ready" (default 90 000 ms, systemd's
   * TimeoutStartSec; 0 waits forever). Past it the run is ended as a failure the restart policy
   * sees (reason `startTimeout`), as systemd fails a unit that never sent READY=1.
   */
  startTimeoutMs?: number;
}

export type ProbeKind = 'exec' | 'tcp' | 'http' | 'line' | 'notify';

/** A probe with its defaults filled in: what the command machine needs to decide. */
export interface ResolvedProbe {
  kind: ProbeKind;
  /** exec, tcp and http are asked for, every interval; line and notify are told by the command. */
  polled: boolean;
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  /** 0: no limit. Absent in snapshots saved before it existed: no limit. */
  startTimeoutMs: number;
  /** For people: `tcp :8080`, `http http://…`, `line /listening/`. */
  text: string;
}

export type DependencyCondition = 'started' | 'ready' | 'succeeded';

export interface Dependency {
  label: string;
  /** Default 'ready' (which is 'started' for a command without a probe), as systemd's ordering. */
  condition?: DependencyCondition;
}

export type SupervisionStrategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

export interface SupervisionSpec {
  strategy: SupervisionStrategy;
  /** Past maxRestarts relaunches within withinMs the group gives up (OTP's intensity and period). */
  intensity?: { maxRestarts: number; withinMs: number };
  /** When the group gives up, the workspace stops too (OTP: the supervisor escalates). Default false. */
  escalate?: boolean;
}

export const PROBE_FIELDS = ['exec', 'tcp', 'http', 'line', 'notify', 'intervalMs', 'timeoutMs', 'failureThreshold', 'startTimeoutMs'] as const;
export const PROBE_KINDS: readonly ProbeKind[] = ['exec', 'tcp', 'http', 'line', 'notify'];
export const DEPENDENCY_FIELDS = ['label', 'condition'] as const;
export const DEPENDENCY_CONDITIONS: readonly DependencyCondition[] = ['started', 'ready', 'succeeded'];
export const SUPERVISION_FIELDS = ['strategy', 'intensity', 'escalate'] as const;
export const INTENSITY_FIELDS = ['maxRestarts', 'withinMs'] as const;
export const STRATEGIES: readonly SupervisionStrategy[] = ['one_for_one', 'one_for_all', 'rest_for_one'];

export const PROBE_DEFAULTS = { intervalMs: 1000, timeoutMs: 1000, failureThreshold: 3, startTimeoutMs: 90_000 };
/** A named group of WorkspaceSpec.groups. */
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function resolveProbe(probe: ReadinessProbe | undefined): ResolvedProbe | null {
  if (!probe) return null;
  const kind = PROBE_KINDS.find((k) => probe[k] !== undefined)!;
  const text =
    kind === 'exec' ? `exec ${probe.exec!.join(' ')}`
    : kind === 'tcp' ? `tcp :${probe.tcp}`
    : kind === 'http' ? `http ${probe.http}`
    : kind === 'line' ? `line /${probe.line}/`
    : 'notify READY=1';
  return {
    kind,
    polled: kind === 'exec' || kind === 'tcp' || kind === 'http',
    intervalMs: probe.intervalMs ?? PROBE_DEFAULTS.intervalMs,
    timeoutMs: probe.timeoutMs ?? PROBE_DEFAULTS.timeoutMs,
    failureThreshold: probe.failureThreshold ?? PROBE_DEFAULTS.failureThreshold,
    startTimeoutMs: probe.startTimeoutMs ?? PROBE_DEFAULTS.startTimeoutMs,
    text,
  };
}

/**
 * What is wrong with the dependencies of commands declared together (a spec file), found from
 * the specs alone: a label no command of the set carries, or a cycle. `labels[i]` is command i's.
 */
export function declaredDependencyProblem(
  labels: readonly string[],
  dependsOn: ReadonlyArray<readonly Dependency[] | undefined>,
): { command: number; dependency: number; problem: string } | null {
  for (const [i, deps] of dependsOn.entries()) {
    for (const [j, dep] of (deps ?? []).entries()) {
      if (!labels.includes(dep.label)) {
        return { command: i, dependency: j, problem: `names no command of this workspace: '${dep.label}' (commands: ${labels.join(', ')})` };
      }
      if (dep.label === labels[i]) return { command: i, dependency: j, problem: `'${dep.label}' is the command itself: a command cannot wait for itself` };
    }
  }
  // A cycle: follow dependencies depth first.
  const state = new Map<number, 'open' | 'done'>();
  const path: number[] = [];
  const visit = (i: number): number[] | null => {
    if (state.get(i) === 'done') return null;
    if (state.get(i) === 'open') return path.slice(path.indexOf(i));
    state.set(i, 'open');
    path.push(i);
    for (const dep of dependsOn[i] ?? []) {
      const found = visit(labels.indexOf(dep.label));
      if (found) return found;
    }
    path.pop();
    state.set(i, 'done');
    return null;
  };
  for (let i = 0; i < labels.length; i++) {
    const cycle = visit(i);
    if (cycle) {
      return { command: cycle[0]!, dependency: 0, problem: `makes a cycle: ${[...cycle, cycle[0]!].map((k) => labels[k]).join(' → ')}; no command of a cycle could ever start` };
    }
  }
  return null;
}
