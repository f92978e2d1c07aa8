import { existsSync, mkdirSync, rmSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ShumaError } from '../../protocol/errors.js';

// NOTIFY_SOCKET, as systemd gives a Type=notify service: a unix datagram socket per run, on
// which the program says `READY=1` (sd_notify(3), systemd-notify(1), or a plain sendto).
// Node has no unix datagram sockets: a small addon of ours (native/notify-socket.c) binds it.

interface NotifyAddon {
  listen(path: string, onMessage: (datagram: Buffer) => void): unknown;
  close(handle: unknown): void;
}

/** This file is dist/src/host/probes/notify-socket.js once built: the package root is four levels up. */
const ADDON_PATH = fileURLToPath(new URL('../../../../build/Release/shuma_notify.node', import.meta.url));
/** A unix socket path longer than this is cut by the kernel's sockaddr_un. */
const MAX_SOCKET_PATH = 107;

type Fields = Record<string, string>;

interface Entry {
  handle: unknown;
  path: string;
  pending: Fields[];
  handler: ((fields: Fields) => void) | null;
}

/** `READY=1\nSTATUS=serving` → { READY: '1', STATUS: 'serving' } */
export function parseNotification(datagram: Buffer): Fields {
  const fields: Fields = {};
  for (const line of datagram.toString('utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

export class NotifySockets {
  private addon: NotifyAddon | null = null;
  private dir: string | null = null;
  private readonly entries = new Map<string, Entry>();

  /** Binds the socket a run will be told of; what it hears before listen() is kept. Returns its path. */
  open(token: string): string {
    const addon = this.load();
    this.dir ??= this.makeDir();
    const socketPath = path.join(this.dir, `${token}.sock`);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      throw new ShumaError('SPAWN_FAILED', `the notify socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes: set TMPDIR to a shorter directory`);
    }
    const entry: Entry = { handle: null, path: socketPath, pending: [], handler: null };
    entry.handle = addon.listen(socketPath, (datagram) => {
      const fields = parseNotification(datagram);
      if (entry.handler) entry.handler(fields);
      else if (entry.pending.length < 16) entry.pending.push(fields);
    });
    this.entries.set(token, entry);
    return socketPath;
  }

  listen(token: string, handler: (fields: Fields) => void): void {
    const entry = this.entries.get(token);
    if (!entry) return;
    entry.handler = handler;
    for (const fields of entry.pending.splice(0)) handler(fields);
  }

  close(token: string): void {
    const entry = this.entries.get(token);
    if (!entry) return;
    this.entries.delete(token);
    this.addon?.close(entry.handle);
    try {
      unlinkSync(entry.path);
    } catch {
      // Already gone with its directory: nothing to remove.
    }
  }

  closeAll(): void {
    for (const token of [...this.entries.keys()]) this.close(token);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  private load(): NotifyAddon {
    if (this.addon) return this.addon;
    if (!existsSync(ADDON_PATH)) {
      throw new ShumaError(
        'SPAWN_FAILED',
        `ready.notify needs shuma's native addon (${ADDON_PATH} was not built): run 'npm rebuild shuma' with a C compiler, or use another probe (tcp, http, exec, line)`,
      );
    }
    this.addon = createRequire(import.meta.url)(ADDON_PATH) as NotifyAddon;
    return this.addon;
  }

  private makeDir(): string {
    const dir = path.join(tmpdir(), `shuma-notify-${process.pid}-${Date.now().toString(36)}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }
}
