import { fail } from '../../protocol/checks.js';
import type { DependencyCondition } from '../../protocol/supervision-spec.js';
import type { CommandSpec } from '../../protocol/specs.js';
import type { EndedPhase } from '../../protocol/machine-events.js';
import { phaseOf } from '../../machines/group-view.js';
import type { WorkspaceEntry } from '../registry/registry.js';

export interface ResolvedDependency {
  key: string;
  label: string;
  condition: DependencyCondition;
  /** The dependency had ended already: how (its actor is gone from its workspace). */
  ended?: EndedPhase;
}

/** A command about to join the workspace: its key, label and spec. */
export interface Newcomer {
  key: string;
  label: string;
  spec: CommandSpec;
}

/**
 * The dependencies of each newcomer, by command key. A label names a command of the workspace or
 * one declared in the same set (runAll, a spec file): one that is not there yet is an error,
 * not a wait — the set is declared together, as process-compose's `depends_on` in one file.
 * Labels named by a dependency must be unique; the graph must have no cycle.
 */
export function resolveDependencies(
  ws: WorkspaceEntry,
  newcomers: readonly Newcomer[],
  lastExitOf: (key: string) => { status: number } | null = () => null,
  prefix = (i: number) => (newcomers.length === 1 ? '' : `commands[${i}].`),
): ResolvedDependency[][] {
  // Most runs name no dependency: nothing to resolve, and no reading of every command.
  if (newcomers.every((n) => (n.spec.dependsOn ?? []).length === 0)) return newcomers.map(() => []);
  const byLabel = new Map<string, string[]>();
  const note = (label: string, key: string) => byLabel.set(label, [...(byLabel.get(label) ?? []), key]);
  for (const command of ws.commands.values()) note(command.label, command.key);
  for (const n of newcomers) note(n.label, n.key);
  const resolved = newcomers.map((n, i) =>
    (n.spec.dependsOn ?? []).map((dep, j): ResolvedDependency => {
      const field = `${prefix(i)}dependsOn[${j}].label`;
      const keys = byLabel.get(dep.label) ?? [];
      if (keys.length === 0) {
        const known = [...byLabel.keys()].filter((l) => l !== n.label);
        fail(
          field,
          `names no command of workspace ${ws.label}: '${dep.label}' (commands: ${known.join(', ') || 'none'}); run it first, or declare both together (runAll, a spec file)`,
        );
      }
      if (keys.length > 1) fail(field, `'${dep.label}' is the label of ${keys.length} commands: a dependency needs a unique label`);
      if (keys[0] === n.key) fail(field, `'${dep.label}' is the command itself: a command cannot wait for itself`);
      const ended = endedPhase(ws, keys[0]!, lastExitOf);
      return { key: keys[0]!, label: dep.label, condition: dep.condition ?? 'ready', ...(ended ? { ended } : {}) };
    }),
  );
  const cycle = findCycle(newcomers.map((n, i) => ({ key: n.key, deps: resolved[i]!.map((d) => d.key) })));
  if (cycle) {
    const label = (key: string) => newcomers.find((n) => n.key === key)?.label ?? key;
    const i = newcomers.findIndex((n) => n.key === cycle[0]);
    fail(`${prefix(i)}dependsOn`, `makes a cycle: ${[...cycle, cycle[0]!].map(label).join(' → ')}; no command of a cycle could ever start`);
  }
  return resolved;
}

/**
 * How an existing command ended, if it did: its actor may be gone from its workspace (a finished
 * command is forgotten there), so the dependant is told. The mirror may lag its actor by a
 * message: a one-shot run that exited is also taken from the process table (a command that does
 * not restart on failure ends with its run).
 */
function endedPhase(ws: WorkspaceEntry, key: string, lastExitOf: (key: string) => { status: number } | null): EndedPhase | undefined {
  const command = ws.commands.get(key);
  const snapshot = command?.snapshot;
  if (snapshot && snapshot.status === 'done') return phaseOf(snapshot as Parameters<typeof phaseOf>[0]) as EndedPhase;
  const exit = lastExitOf(key);
  if (!command || !exit) return undefined;
  if (exit.status === 0) return 'succeeded';
  if (exit.status !== 0 && !command.policy.onFailure) return 'exited';
  return undefined;
}

/** A cycle among the newcomers (existing commands cannot depend on them), as keys; null if none. */
function findCycle(nodes: ReadonlyArray<{ key: string; deps: readonly string[] }>): string[] | null {
  const deps = new Map(nodes.map((n) => [n.key, n.deps]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (key: string): string[] | null => {
    if (state.get(key) === 'done' || !deps.has(key)) return null;
    if (state.get(key) === 'open') return stack.slice(stack.indexOf(key));
    state.set(key, 'open');
    stack.push(key);
    for (const next of deps.get(key)!) {
      const found = visit(next);
      if (found) return found;
    }
    stack.pop();
    state.set(key, 'done');
    return null;
  };
  for (const n of nodes) {
    const found = visit(n.key);
    if (found) return found;
  }
  return null;
}
