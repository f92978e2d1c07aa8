import type { InspectionEvent, Subscription } from 'xstate';
import type { FromWorker } from '../protocol/worker-messages.js';
import { isUnarmedDelay } from '../machines/no-timer.js';
import { toInspectionRecord } from './inspection-records.js';

/** What an inspection observer attaches to: a workspace actor's system. */
interface Inspectable {
  system: { inspect(observer: (event: InspectionEvent) => void): Subscription };
}

/**
 * The inspection observers of one worker's workspaces: attached while someone inspects (an
 * observer is handed every step of every actor, thrown away unless an inspector is open), and
 * for the life of those created meanwhile.
 */
export class InspectionObservers {
  private inspecting = false;
  /** By workspace; null: attached at creation (`atCreation`), where it sees the actor made. */
  private readonly inspected = new Map<string, Subscription | null>();

  constructor(
    private readonly send: (message: FromWorker) => void,
    private readonly now: () => number,
  ) {}

  /** Whether someone inspects now. */
  get enabled(): boolean {
    return this.inspecting;
  }

  /** The `inspect` option of a workspace actor about to be created: none while nobody inspects. */
  atCreation(wsId: string): { inspect: (event: InspectionEvent) => void } | Record<string, never> {
    if (!this.inspecting) return {};
    this.inspected.set(wsId, null);
    return { inspect: (event) => this.record(wsId, event) };
  }

  /** Inspection on: every workspace's steps are recorded from now on; off: observers let go. */
  setEnabled(enabled: boolean, workspaces: ReadonlyMap<string, Inspectable>): void {
    this.inspecting = enabled;
    for (const [wsId, actor] of workspaces) {
      if (enabled && !this.inspected.has(wsId)) {
        this.inspected.set(wsId, actor.system.inspect((event) => this.record(wsId, event)));
      }
      const subscription = this.inspected.get(wsId);
      if (!enabled && subscription) {
        subscription.unsubscribe();
        this.inspected.delete(wsId);
      }
    }
  }

  /** The workspace is gone from this thread: its observer lets go. */
  forget(wsId: string): void {
    this.inspected.get(wsId)?.unsubscribe();
    this.inspected.delete(wsId);
  }

  private record(wsId: string, event: InspectionEvent): void {
    // One attached at creation stays; it records only while someone inspects.
    if (!this.inspecting) return;
    if (event.type === '@xstate.microstep' && isUnarmedDelay(event.event.type, event._transitions.length)) return;
    this.send({ type: 'inspection', record: toInspectionRecord(wsId, event, this.now()) });
  }
}
