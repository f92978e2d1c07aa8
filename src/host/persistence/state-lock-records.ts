import { randomUUID } from 'node:crypto';
import { constants, promises as fs, readFileSync } from 'node:fs';
import { ShumaError } from '../../protocol/errors.js';
import { isSameProcess, readProcStat } from '../processes/proc.js';
import { writeDurably } from './durable-files.js';
import { errnoOf } from './state-lock-errors.js';

// The state lock's files on disk (state-lock.ts says how they are used): what a lock, a draft or
// a claim records, written whole and fsynced before link(2) publishes it under its name, and
// read back without following a link.

export const LOCK_FILE = 'shuma.lock';
const DRAFT_PREFIX = `${LOCK_FILE}.draft-`;
const CLAIM_PREFIX = `${LOCK_FILE}.claim-`;

/** What a lock, a draft or a claim holds: one process, for all time, and one acquisition of it. */
export interface LockRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat, clock ticks after boot: tells a reused pid apart. */
  startTime: number;
  /** A start time only means something within one boot. */
  bootId: string;
  /** Unique per acquisition: tells apart two runtimes of one process, and names claims. */
  token: string;
  acquiredAt: number;
}

export type Reading =
  | { kind: 'missing' }
  | { kind: 'invalid'; why: string }
  | { kind: 'record'; record: LockRecord };

export function ownRecord(): LockRecord {
  const self = readProcStat(process.pid);
  if (!self) throw new ShumaError('INTERNAL', 'cannot read /proc/self/stat: the state lock needs /proc');
  return { pid: process.pid, startTime: self.startTime, bootId: bootId(), token: randomUUID(), acquiredAt: Date.now() };
}

/** The owner is in the name, so a sweep can judge a draft without reading it. */
export function draftName(record: LockRecord): string {
  return `${DRAFT_PREFIX}${record.pid}-${record.startTime}-${record.token}`;
}

/** The name of the claim on the stale file whose record has `token`. */
export function claimName(token: string): string {
  return `${CLAIM_PREFIX}${token}`;
}

/**
 * Once the lock is ours, every claim is about a lock that can never come back (tokens are
 * unique), and a draft whose process is gone is litter from a crash: both can go.
 */
export function isLitter(name: string): boolean {
  return name.startsWith(CLAIM_PREFIX) || (name.startsWith(DRAFT_PREFIX) && !draftOwnerAlive(name));
}

function draftOwnerAlive(name: string): boolean {
  const [pid, startTime] = name.slice(DRAFT_PREFIX.length).split('-').map(Number);
  if (!Number.isInteger(pid) || !Number.isInteger(startTime)) return false;
  return isSameProcess({ pid: pid!, startTime: startTime! });
}

export async function writeRecordFile(file: string, record: LockRecord): Promise<void> {
  // On disk before it is published: a power cut must not leave an empty lock that looks foreign.
  await writeDurably(file, JSON.stringify(record));
}

/** Gives the complete `source` file the name `name`, unless that name exists (link(2) is atomic). */
export async function publish(source: string, name: string): Promise<boolean> {
  try {
    await fs.link(source, name);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return false; // taken: the caller reads who holds it
    throw error;
  }
}

export async function readRecord(file: string): Promise<Reading> {
  let text: string;
  try {
    text = await fs.readFile(file, { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW });
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ENOENT') return { kind: 'missing' };
    if (code === 'ELOOP') return { kind: 'invalid', why: 'it is a symbolic link' };
    throw error;
  }
  return parseRecord(text);
}

function parseRecord(text: string): Reading {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', why: 'its content is not JSON' }; // garbage is an outcome, reported by the caller
  }
  if (typeof value !== 'object' || value === null) return { kind: 'invalid', why: 'its content is not a lock record' };
  const { pid, startTime, bootId: boot, token, acquiredAt } = value as Record<string, unknown>;
  const valid =
    Number.isSafeInteger(pid) && (pid as number) > 0 &&
    Number.isSafeInteger(startTime) && (startTime as number) >= 0 &&
    typeof boot === 'string' && typeof token === 'string' && token.length > 0 &&
    typeof acquiredAt === 'number';
  if (!valid) return { kind: 'invalid', why: 'its content is not a lock record' };
  return { kind: 'record', record: value as LockRecord };
}

export async function removeIfPresent(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw error; // already gone is what we wanted
  }
}

// Read once: it cannot change while this process runs.
let cachedBootId: string | undefined;

export function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}
