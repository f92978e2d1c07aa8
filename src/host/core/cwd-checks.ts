import { checkCwd } from '../spawn/spawn-check.js';

/**
 * A new workspace's cwd, checked to exist (INVALID_SPEC otherwise). Workspaces made together
 * (a batch of creates, a restore) nearly all name one directory: it is looked at once per turn
 * of the event loop, and every create of that turn has that answer (a stat per create was
 * ~20 µs of its ~120). A directory found missing is looked for again at the next create.
 */
export class CwdChecks {
  private readonly thisTurn = new Map<string, Promise<string>>();

  check(cwd: string): Promise<string> {
    // A relative cwd is resolved against the process's: the same string may name another directory later.
    const key = `${process.cwd()}\0${cwd}`;
    let checked = this.thisTurn.get(key);
    if (checked === undefined) {
      checked = checkCwd(cwd, 'cwd', 'INVALID_SPEC');
      if (this.thisTurn.size === 0) setImmediate(() => this.thisTurn.clear());
      this.thisTurn.set(key, checked);
      checked.catch(() => this.thisTurn.delete(key));
    }
    return checked;
  }
}
