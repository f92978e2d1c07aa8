import { LazyMap } from './lazy-collections.js';

/**
 * A workspace's commands by key, also findable by label. Finished commands stay listed, so a
 * long-lived workspace holds thousands: a new command's label is then found in O(1), not by
 * reading every command (that scan was the largest main-thread cost of a run at 5,000).
 */
export class CommandMap<C extends { readonly label: string }> extends LazyMap<string, C> {
  // Made at the first command: an idle workspace (10,000 of them, say) pays for neither.
  private byLabel: Map<string, C> | null = null;
  /** Per derived base label (`sleep`): every suffix from 2 below this one is taken. */
  private lowestFree: Map<string, number> | null = null;

  override set(key: string, command: C): this {
    const previous = super.get(key);
    // Replaced (a command given a new spec keeps its key and label): the new entry is the holder.
    const held = previous !== undefined && this.byLabel?.get(previous.label) === previous;
    if (previous && previous.label !== command.label) this.unindex(previous);
    super.set(key, command);
    this.byLabel ??= new Map();
    // A label appears once per workspace (uniqueLabel); the first holder is the one named.
    if (!this.byLabel.has(command.label) || (held && previous.label === command.label)) this.byLabel.set(command.label, command);
    return this;
  }

  override delete(key: string): boolean {
    const command = super.get(key);
    if (!command) return false;
    super.delete(key);
    this.unindex(command);
    return true;
  }

  override clear(): void {
    super.clear();
    this.byLabel = null;
    this.lowestFree = null;
  }

  /** The command holding `label`, if any. */
  withLabel(label: string): C | undefined {
    return this.byLabel?.get(label);
  }

  /** The first of `label-2`, `label-3`… that no command holds. */
  freeSuffixed(label: string): string {
    let n = this.lowestFree?.get(label) ?? 2;
    while (this.byLabel?.has(`${label}-${n}`)) n++;
    (this.lowestFree ??= new Map()).set(label, n);
    return `${label}-${n}`;
  }

  private unindex(command: C): void {
    const byLabel = this.byLabel;
    if (!byLabel || byLabel.get(command.label) !== command) return;
    byLabel.delete(command.label);
    // Another command may share the label (restored from an older snapshot): it is now the holder.
    for (const other of super.values()) {
      if (other.label === command.label) {
        byLabel.set(other.label, other);
        break;
      }
    }
    const suffixed = /^(.*)-(\d+)$/.exec(command.label);
    if (suffixed) {
      const [, base, n] = suffixed;
      const lowest = this.lowestFree?.get(base!);
      if (lowest !== undefined && Number(n) < lowest) this.lowestFree!.set(base!, Number(n));
    }
  }
}
