import type { ActorSnapshot, PlainValue } from '../../protocol/actor-records.js';
import { samePlain } from '../../protocol/plain-equal.js';
import type { WorkspaceEntry } from '../registry/registry.js';

// The main thread mirrors each workspace twice: the snapshot observers see (value, status,
// context) and the persisted snapshot a restore starts from (the same context, plus children
// and history). Both arrive decoded from the wire as separate copies of one context; held
// twice, they were ~1 KiB of every idle workspace. When they are equal, the persisted one
// holds the mirror's context. Nothing on this thread changes either in place. What every idle
// workspace has alike (its state's name, an empty group, no children) is held once, frozen.

/** `persisted` with the mirror's context in place of its own equal copy. */
export function withMirroredContext(persisted: PlainValue, mirror: ActorSnapshot | null): PlainValue {
  if (mirror === null || typeof persisted !== 'object' || persisted === null || Array.isArray(persisted)) return persisted;
  const own = persisted.context;
  if (own === undefined || own === mirror.context || !samePlain(own, mirror.context)) return persisted;
  persisted.context = mirror.context as PlainValue;
  return persisted;
}

/** A group with no members, as every new workspace without a supervision spec has it. */
const EMPTY_GROUP: PlainValue = deepFreeze({
  strategy: 'one_for_one',
  intensity: null,
  escalate: false,
  failures: [],
  gaveUp: null,
  order: [],
  labels: {},
  deps: {},
  ended: {},
});
const EMPTY_RECORD: PlainValue = Object.freeze({});
const names = new Map<string, string>();

/** One string per state name, not one per workspace and message. */
function internName<T>(value: T): T {
  if (typeof value !== 'string' || value.length > 64) return value;
  let held = names.get(value);
  if (held === undefined) {
    if (names.size >= 1024) return value; // state names are few; anything else is not kept
    names.set(value, (held = value));
  }
  return held as T;
}

/** A workspace's snapshot as the mirror keeps it: what it shares with every other one held once. */
export function internWorkspaceSnapshot(ws: WorkspaceEntry, snapshot: ActorSnapshot): ActorSnapshot {
  snapshot.status = internName(snapshot.status);
  snapshot.value = internName(snapshot.value);
  const context = snapshot.context;
  if (context.id === ws.id) context.id = ws.id;
  if (context.label === ws.label) context.label = ws.label;
  if (context.group !== undefined && context.group !== EMPTY_GROUP && samePlain(context.group, EMPTY_GROUP)) context.group = EMPTY_GROUP;
  return snapshot;
}

/** The persisted snapshot as the mirror keeps it (see withMirroredContext). */
export function internPersisted(persisted: PlainValue): PlainValue {
  if (typeof persisted !== 'object' || persisted === null || Array.isArray(persisted)) return persisted;
  persisted.status = internName(persisted.status ?? null);
  persisted.value = internName(persisted.value ?? null);
  for (const key of ['historyValue', 'children']) {
    const part = persisted[key];
    if (typeof part === 'object' && part !== null && !Array.isArray(part) && Object.keys(part).length === 0) persisted[key] = EMPTY_RECORD;
  }
  return persisted;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
