/** What one probe found: ready (or alive) or not, and in words why. */
export interface ProbeOutcome {
  ok: boolean;
  detail: string;
}
