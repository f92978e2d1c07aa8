import path from 'node:path';
import { checkCwd } from '../spawn/spawn-check.js';

/**
 * A new workspace's cwd, checked to exist (INVALID_SPEC otherwise). Workspaces made together
 * (a batch of creates, a restore) nearly all name one directory: a directory found in this turn
 * of the event loop is not looked at again until the next (a stat per create was ~20 µs of
 * its ~120). Only what was found is remembered; a missing one is looked for each time.
 */
export class CwdChecks {
  private readonly foundThisTurn = new Set<string>();

  async check(cwd: string): Promise<string> {
    const absolute = path.resolve(cwd);
    if (this.foundThisTurn.has(absolute)) return absolute;
    const found = await checkCwd(cwd, 'cwd', 'INVALID_SPEC');
    if (this.foundThisTurn.size === 0) setImmediate(() => this.foundThisTurn.clear());
    this.foundThisTurn.add(found);
    return found;
  }
}
