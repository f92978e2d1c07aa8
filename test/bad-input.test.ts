// Every bad input gets a typed ShumaError whose message names the offending field and says
// how to fix it, and a bad call leaves nothing behind: no workspace, no process.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ulid } from 'ulid';
import {
  ShumaError,
  isShumaError,
  type ActorSnapshot,
  type CommandSpec,
  type ErrorCode,
  type Runtime,
  type Workspace,
  type WorkspaceSpec,
} from '../src/index.js';
import { ManualClock } from '../src/testing/index.js';
import { fixture, isAlive, startRuntime, stateOf, waitFor, waitForOutput } from './helpers.js';

// ── helpers ──────────────────────────────────────────────────────────────────────────

/** A value of the wrong type, handed to the API as a user of plain JavaScript would. */
function bad<T>(value: unknown): T {
  return value as T;
}

/** Words that tell the user what to do about it. */
const FIX_HINT =
  /must|did you mean|create|give|check|chmod|add |remove|rename|raise|lower|pick|leave|name a|listWorkspaces\(\)|commands\(\)|nothing left|known fields|interpreter|new workspace|createRuntime/i;

interface Expect {
  /** The offending field, as the message must name it. */
  field?: string;
  /** Texts (or patterns) the message must contain. */
  mentions?: Array<string | RegExp>;
  /** Texts the message must not contain (e.g. the exec when the cwd is at fault). */
  notMentions?: string[];
  osCode?: string;
  fix?: RegExp;
}

/** `code` may list the codes that are all acceptable. */
function checkError(error: unknown, code: ErrorCode | ErrorCode[], expect: Expect = {}): ShumaError {
  const codes = Array.isArray(code) ? code : [code];
  assert.ok(isShumaError(error), `expected a ShumaError (${codes.join(' or ')}), got: ${String(error)}`);
  assert.ok(error instanceof ShumaError, 'a ShumaError is an instance of the exported class');
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'ShumaError');
  assert.ok(codes.includes(error.code), `code ${error.code} is not ${codes.join(' or ')}; message: ${error.message}`);
  assert.ok(error.message.startsWith(`${error.code}: `), `message starts with its code: ${error.message}`);
  if (expect.field !== undefined) {
    assert.ok(error.message.includes(expect.field), `message names the field ${expect.field}: ${error.message}`);
  }
  for (const m of expect.mentions ?? []) {
    if (typeof m === 'string') assert.ok(error.message.includes(m), `message mentions ${JSON.stringify(m)}: ${error.message}`);
    else assert.match(error.message, m);
  }
  for (const m of expect.notMentions ?? []) {
    assert.ok(!error.message.includes(m), `message must not mention ${JSON.stringify(m)}: ${error.message}`);
  }
  if (expect.osCode !== undefined) assert.equal(error.osCode, expect.osCode, `osCode; message: ${error.message}`);
  assert.match(error.message, expect.fix ?? FIX_HINT, `message says how to fix it: ${error.message}`);
  return error;
}

/**
 * `action` must return a promise that rejects with a ShumaError of `code`. A promise-returning
 * API that throws synchronously is itself a bug: `api().catch(...)` would not catch it.
 */
async function rejectsWith(action: () => unknown, code: ErrorCode | ErrorCode[], expect: Expect = {}): Promise<ShumaError> {
  let result: unknown;
  try {
    result = action();
  } catch (error) {
    assert.fail(`threw synchronously instead of returning a rejected promise: ${String(error)}`);
  }
  assert.ok(result instanceof Promise, 'returns a promise');
  let caught: unknown = undefined;
  let rejected = false;
  try {
    await result;
  } catch (error) {
    rejected = true;
    caught = error;
  }
  assert.ok(rejected, `expected a rejection with ${String(code)}, but it resolved`);
  return checkError(caught, code, expect);
}

function throwsWith(action: () => unknown, code: ErrorCode, expect: Expect = {}): ShumaError {
  let caught: unknown = undefined;
  let threw = false;
  try {
    action();
  } catch (error) {
    threw = true;
    caught = error;
  }
  assert.ok(threw, `expected a throw with ${code}`);
  return checkError(caught, code, expect);
}

/** Pids of the live child processes of this test process, from /proc. */
function childPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // gone between readdir and read
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === process.pid) pids.push(Number(name));
  }
  return pids.sort((a, b) => a - b);
}

interface Baseline {
  workspaces: string[];
  aliveCommands: number;
  children: number[];
}

async function baseline(rt: Runtime): Promise<Baseline> {
  return {
    workspaces: (await rt.listWorkspaces()).map((w) => w.id).sort(),
    aliveCommands: (await rt.health()).aliveCommands,
    children: childPids(),
  };
}

/** Nothing new: no workspace, no command, no child process since `before`. */
async function assertNothingLeft(rt: Runtime, before: Baseline, ws?: Workspace, runsBefore?: number): Promise<void> {
  const now = await baseline(rt);
  assert.deepEqual(now.workspaces, before.workspaces, 'no workspace was left behind');
  assert.equal(now.aliveCommands, before.aliveCommands, 'no command was left alive');
  assert.deepEqual(now.children, before.children, 'no child process was left behind');
  if (ws && runsBefore !== undefined) assert.equal((await ws.commands()).length, runsBefore, 'no run was recorded');
}

/** The first snapshot (current or next) for which `predicate` holds. */
function until(
  source: { getSnapshot(): ActorSnapshot | null; subscribe(o: (s: ActorSnapshot) => void): () => void },
  predicate: (s: ActorSnapshot) => boolean,
  what: string,
): Promise<ActorSnapshot> {
  const current = source.getSnapshot();
  if (current && predicate(current)) return Promise.resolve(current);
  return waitFor((o: (s: ActorSnapshot) => void) => source.subscribe(o), predicate, what);
}

const tmpRoot = mkdtempSync(path.join(tmpdir(), 'shuma-bad-input-'));
process.on('exit', () => rmSync(tmpRoot, { recursive: true, force: true }));

function tmpPath(name: string): string {
  return path.join(tmpRoot, name);
}

// ── unknown ids ──────────────────────────────────────────────────────────────────────

describe('unknown ids', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime();
  });
  after(() => rt.shutdown({ graceMs: 0 }));

  test('rt.workspace() of an unknown id is undefined', () => {
    assert.equal(rt.workspace('nope'), undefined);
    assert.equal(rt.workspace(''), undefined);
    assert.equal(rt.workspace(bad<string>(undefined)), undefined);
    assert.equal(rt.workspace(bad<string>(42)), undefined);
  });

  test('a stopped workspace: rt.workspace() forgets it and every handle method says WORKSPACE_NOT_FOUND', async () => {
    const before = await baseline(rt);
    const ws = await rt.createWorkspace({ label: 'gone' });
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, cmd.id, 'ready');
    const result = await ws.stop({ graceMs: 0 });
    assert.equal(result.reaped, 1);
    assert.equal(isAlive(cmd.pid), false);
    assert.equal(rt.workspace(ws.id), undefined);
    assert.equal(stateOf(ws.getSnapshot()), 'stopped');

    const notFound: Expect = { mentions: [ws.id], fix: /stopped|never existed|listWorkspaces/ };
    await rejectsWith(() => ws.run({ exec: '/bin/true' }), 'WORKSPACE_NOT_FOUND', notFound);
    await rejectsWith(() => ws.commands(), 'WORKSPACE_NOT_FOUND', notFound);
    await rejectsWith(() => ws.logs(cmd.id), 'WORKSPACE_NOT_FOUND', notFound);
    await rejectsWith(() => ws.stop(), 'WORKSPACE_NOT_FOUND', notFound);
    await assertNothingLeft(rt, before);
  });

  test("ws.logs('nope') → COMMAND_NOT_FOUND", async () => {
    const ws = await rt.createWorkspace({ label: 'logs' });
    try {
      await rejectsWith(() => ws.logs('nope'), 'COMMAND_NOT_FOUND', { mentions: ['"nope"', ws.id], fix: /commands\(\)/ });
      await rejectsWith(() => ws.logs(''), 'COMMAND_NOT_FOUND', { mentions: ['""'] });
      await rejectsWith(() => ws.logs(bad<string>(7)), 'COMMAND_NOT_FOUND');
    } finally {
      await ws.stop({ graceMs: 0 });
    }
  });

  test("a command id of another workspace is COMMAND_NOT_FOUND in this one", async () => {
    const a = await rt.createWorkspace({ label: 'a' });
    const b = await rt.createWorkspace({ label: 'b' });
    try {
      const cmd = await a.run({ exec: '/bin/echo', argv: ['hi'] });
      await cmd.exited;
      assert.equal((await a.logs(cmd.id)).toString(), 'hi\n');
      await rejectsWith(() => b.logs(cmd.id), 'COMMAND_NOT_FOUND', { mentions: [cmd.id, b.id] });
    } finally {
      await Promise.all([a.stop({ graceMs: 0 }), b.stop({ graceMs: 0 })]);
    }
  });

  test('bad log options → INVALID_ARGUMENT naming the option', async () => {
    const ws = await rt.createWorkspace({ label: 'log-options' });
    try {
      const cmd = await ws.run({ exec: '/bin/true' });
      await cmd.exited;
      await rejectsWith(() => ws.logs(cmd.id, { stream: bad('stdin') }), 'INVALID_ARGUMENT', { field: 'stream' });
      await rejectsWith(() => ws.logs(cmd.id, { tailBytes: -1 }), 'INVALID_ARGUMENT', { field: 'tailBytes' });
      await rejectsWith(() => ws.logs(cmd.id, { tailBytes: 1.5 }), 'INVALID_ARGUMENT', { field: 'tailBytes' });
      await rejectsWith(() => ws.logs(cmd.id, { tailBytes: bad('10') }), 'INVALID_ARGUMENT', { field: 'tailBytes' });
    } finally {
      await ws.stop({ graceMs: 0 });
    }
  });
});

// ── exec ─────────────────────────────────────────────────────────────────────────────

describe('bad exec', () => {
  let rt: Runtime;
  let ws: Workspace;
  before(async () => {
    rt = await startRuntime();
    ws = await rt.createWorkspace({ label: 'exec' });
  });
  after(() => rt.shutdown({ graceMs: 0 }));

  async function expectRunError(spec: CommandSpec, code: ErrorCode, expect: Expect): Promise<ShumaError> {
    const before = await baseline(rt);
    const runsBefore = (await ws.commands()).length;
    const error = await rejectsWith(() => ws.run(spec), code, expect);
    await assertNothingLeft(rt, before, ws, runsBefore);
    assert.equal(stateOf(ws.getSnapshot()), 'running', 'the workspace is unharmed');
    return error;
  }

  test('empty exec → INVALID_SPEC', async () => {
    await expectRunError({ exec: '' }, 'INVALID_SPEC', { field: 'exec', mentions: ['non-empty string'] });
  });

  test('non-string or missing exec → INVALID_SPEC', async () => {
    for (const exec of [5, null, undefined, ['ls'], { path: '/bin/ls' }, true]) {
      await expectRunError(bad({ exec }), 'INVALID_SPEC', { field: 'exec', mentions: ['must be a string'] });
    }
    await expectRunError(bad({ argv: ['x'] }), 'INVALID_SPEC', { field: 'exec' });
  });

  test('a spec that is not an object → INVALID_SPEC', async () => {
    for (const spec of [null, undefined, '/bin/ls', 42, ['/bin/ls']]) {
      await expectRunError(bad(spec), 'INVALID_SPEC', { field: 'spec', mentions: ['must be an object'] });
    }
  });

  test('exec with a NUL byte → INVALID_SPEC', async () => {
    await expectRunError({ exec: '/bin/true\0--help' }, 'INVALID_SPEC', { field: 'exec', mentions: ['NUL'] });
  });

  test('an absolute path that does not exist → SPAWN_FAILED ENOENT', async () => {
    const missing = tmpPath('no-such-program');
    const error = await expectRunError({ exec: missing }, 'SPAWN_FAILED', {
      field: 'exec',
      mentions: [missing, 'does not exist'],
      osCode: 'ENOENT',
    });
    assert.equal(error.field, 'exec');
  });

  test('a relative path that does not exist → SPAWN_FAILED ENOENT, resolved against the cwd', async () => {
    await expectRunError({ exec: './no-such-program', cwd: tmpRoot }, 'SPAWN_FAILED', {
      field: 'exec',
      mentions: ['./no-such-program', path.join(tmpRoot, 'no-such-program')],
      osCode: 'ENOENT',
    });
  });

  test('a file that is not executable → SPAWN_FAILED EACCES with a chmod hint', async () => {
    const file = tmpPath('not-executable.sh');
    writeFileSync(file, '#!/bin/sh\necho hi\n');
    chmodSync(file, 0o644);
    await expectRunError({ exec: file }, 'SPAWN_FAILED', {
      field: 'exec',
      mentions: [file, 'not executable', 'chmod +x'],
      osCode: 'EACCES',
    });
  });

  test('a directory → SPAWN_FAILED EISDIR', async () => {
    const dir = tmpPath('a-directory');
    mkdirSync(dir, { recursive: true });
    await expectRunError({ exec: dir }, 'SPAWN_FAILED', { field: 'exec', mentions: [dir, 'directory'], osCode: 'EISDIR' });
  });

  test('a program not on PATH → SPAWN_FAILED ENOENT naming PATH', async () => {
    await expectRunError({ exec: 'shuma-no-such-program-x7' }, 'SPAWN_FAILED', {
      field: 'exec',
      mentions: ["'shuma-no-such-program-x7'", 'PATH'],
      osCode: 'ENOENT',
      fix: /full path|add its directory to PATH/,
    });
  });

  test('a name on PATH that is not executable → SPAWN_FAILED EACCES', async () => {
    const bin = tmpPath('path-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'shuma-noexec'), '#!/bin/sh\n');
    chmodSync(path.join(bin, 'shuma-noexec'), 0o644);
    await expectRunError({ exec: 'shuma-noexec', env: { PATH: bin } }, 'SPAWN_FAILED', {
      field: 'exec',
      mentions: [path.join(bin, 'shuma-noexec')],
      osCode: 'EACCES',
    });
  });

  test('a script whose #! interpreter does not exist → SPAWN_FAILED ENOENT, nothing left', async () => {
    const file = tmpPath('bad-interpreter.sh');
    writeFileSync(file, '#!/nonexistent/shuma-interp\necho hi\n');
    chmodSync(file, 0o755);
    await expectRunError({ exec: file }, 'SPAWN_FAILED', { mentions: [file, 'ENOENT'], osCode: 'ENOENT' });
    // The workspace still runs commands after a failed spawn.
    const ok = await ws.run({ exec: '/bin/echo', argv: ['still fine'] });
    assert.equal((await ok.exited).status, 0);
  });
});

// ── cwd ──────────────────────────────────────────────────────────────────────────────

describe('missing cwd', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime();
  });
  after(() => rt.shutdown({ graceMs: 0 }));

  test('workspace-level missing cwd → INVALID_SPEC naming the cwd; no workspace made', async () => {
    const before = await baseline(rt);
    const cwd = tmpPath('no-such-ws-dir');
    const error = await rejectsWith(() => rt.createWorkspace({ label: 'w', cwd }), 'INVALID_SPEC', {
      field: 'cwd',
      mentions: [cwd, 'does not exist'],
      osCode: 'ENOENT',
    });
    assert.equal(error.field, 'cwd');
    await assertNothingLeft(rt, before);
    assert.equal((await rt.health()).aliveWorkspaces, 0);
  });

  test('a cwd removed after workspaces were made in it → the next create is refused (it is looked at again)', async () => {
    const cwd = tmpPath('removed-ws-dir');
    mkdirSync(cwd);
    // Made together, in one turn: the directory is looked at once for all of them.
    const made = await Promise.all([0, 1, 2].map((i) => rt.createWorkspace({ label: `in-dir-${i}`, cwd })));
    rmSync(cwd, { recursive: true });
    const before = await baseline(rt);
    await rejectsWith(() => rt.createWorkspace({ label: 'w', cwd }), 'INVALID_SPEC', { field: 'cwd', mentions: [cwd, 'does not exist'] });
    await assertNothingLeft(rt, before);
    await Promise.all(made.map((ws) => ws.stop({ graceMs: 0 })));
  });

  test('workspace-level cwd that is a file → INVALID_SPEC', async () => {
    const before = await baseline(rt);
    const file = tmpPath('a-file-not-a-dir');
    writeFileSync(file, 'x');
    await rejectsWith(() => rt.createWorkspace({ label: 'w', cwd: file }), 'INVALID_SPEC', {
      field: 'cwd',
      mentions: [file, 'not a directory'],
    });
    await assertNothingLeft(rt, before);
  });

  test('command-level missing cwd → SPAWN_FAILED naming the cwd, not the executable', async () => {
    const ws = await rt.createWorkspace({ label: 'cmd-cwd' });
    try {
      const before = await baseline(rt);
      const cwd = tmpPath('no-such-cmd-dir');
      for (const exec of ['/bin/true', 'true', './run-me']) {
        const error = await rejectsWith(() => ws.run({ exec, cwd }), 'SPAWN_FAILED', {
          field: 'cwd',
          mentions: [cwd, 'does not exist'],
          notMentions: [`'${exec}'`, 'exec'],
          osCode: 'ENOENT',
        });
        assert.equal(error.field, 'cwd');
      }
      // Relative to the workspace's cwd.
      await rejectsWith(() => ws.run({ exec: '/bin/true', cwd: 'no-such-relative-dir' }), 'SPAWN_FAILED', {
        mentions: ['no-such-relative-dir'],
        notMentions: ['/bin/true'],
        osCode: 'ENOENT',
      });
      await assertNothingLeft(rt, before, ws, 0);
    } finally {
      await ws.stop({ graceMs: 0 });
    }
  });

  test('command-level cwd inherited from a workspace whose directory was removed → SPAWN_FAILED naming the cwd', async () => {
    const dir = tmpPath('removed-later');
    mkdirSync(dir, { recursive: true });
    const ws = await rt.createWorkspace({ label: 'removed-cwd', cwd: dir });
    try {
      rmSync(dir, { recursive: true });
      const before = await baseline(rt);
      await rejectsWith(() => ws.run({ exec: '/bin/true' }), 'SPAWN_FAILED', {
        field: 'cwd',
        mentions: [dir],
        notMentions: ['/bin/true'],
        osCode: 'ENOENT',
      });
      await assertNothingLeft(rt, before, ws, 0);
    } finally {
      await ws.stop({ graceMs: 0 });
    }
  });

  test('cwd with a NUL byte or of the wrong type → INVALID_SPEC', async () => {
    const before = await baseline(rt);
    await rejectsWith(() => rt.createWorkspace({ label: 'w', cwd: '/tmp\0x' }), 'INVALID_SPEC', { field: 'cwd' });
    await rejectsWith(() => rt.createWorkspace(bad({ label: 'w', cwd: 5 })), 'INVALID_SPEC', { field: 'cwd' });
    const ws = await rt.createWorkspace({ label: 'w' });
    try {
      await rejectsWith(() => ws.run({ exec: '/bin/true', cwd: '/tmp\0x' }), 'INVALID_SPEC', { field: 'cwd' });
      await rejectsWith(() => ws.run(bad({ exec: '/bin/true', cwd: ['/tmp'] })), 'INVALID_SPEC', { field: 'cwd' });
      assert.equal((await ws.commands()).length, 0);
    } finally {
      await ws.stop({ graceMs: 0 });
    }
    await assertNothingLeft(rt, before);
  });
});

// ── argv and env ─────────────────────────────────────────────────────────────────────

describe('argv and env', () => {
  let rt: Runtime;
  let ws: Workspace;
  before(async () => {
    rt = await startRuntime();
    ws = await rt.createWorkspace({ label: 'argv-env' });
  });
  after(() => rt.shutdown({ graceMs: 0 }));

  async function runRejects(spec: unknown, expect: Expect): Promise<void> {
    const before = await baseline(rt);
    await rejectsWith(() => ws.run(bad<CommandSpec>(spec)), 'INVALID_SPEC', expect);
    await assertNothingLeft(rt, before, ws, 0);
  }

  async function createRejects(spec: unknown, expect: Expect): Promise<void> {
    const before = await baseline(rt);
    await rejectsWith(() => rt.createWorkspace(bad<WorkspaceSpec>(spec)), 'INVALID_SPEC', expect);
    await assertNothingLeft(rt, before);
  }

  test('argv containing NUL → INVALID_SPEC naming the element', async () => {
    await runRejects({ exec: '/bin/echo', argv: ['ok', 'b\0ad'] }, { field: 'argv[1]', mentions: ['NUL'] });
  });

  test('argv of the wrong type → INVALID_SPEC', async () => {
    await runRejects({ exec: '/bin/echo', argv: 'hello world' }, { field: 'argv', mentions: ['array of strings'] });
    await runRejects({ exec: '/bin/echo', argv: ['a', 2] }, { field: 'argv[1]', mentions: ['must be a string'] });
    await runRejects({ exec: '/bin/echo', argv: [null] }, { field: 'argv[0]' });
  });

  test('env value containing NUL → INVALID_SPEC (command and workspace)', async () => {
    await runRejects({ exec: '/bin/true', env: { FOO: 'a\0b' } }, { field: 'env.FOO', mentions: ['NUL'] });
    await createRejects({ label: 'w', env: { FOO: 'a\0b' } }, { field: 'env.FOO', mentions: ['NUL'] });
  });

  test('env key containing NUL → INVALID_SPEC', async () => {
    await runRejects({ exec: '/bin/true', env: { 'F\0O': 'x' } }, { field: 'env', mentions: ['NUL'] });
    await createRejects({ label: 'w', env: { 'F\0O': 'x' } }, { field: 'env', mentions: ['NUL'] });
  });

  test('empty env key → INVALID_SPEC (command and workspace)', async () => {
    await runRejects({ exec: '/bin/true', env: { '': 'x' } }, { field: 'env', mentions: ['empty variable name'] });
    await createRejects({ label: 'w', env: { '': 'x' } }, { field: 'env', mentions: ['empty variable name'] });
  });

  test("env key containing '=' → INVALID_SPEC naming the key", async () => {
    await runRejects({ exec: '/bin/true', env: { 'A=B': 'x' } }, { field: 'env["A=B"]', mentions: ["'='"] });
    await createRejects({ label: 'w', env: { 'A=B': 'x' } }, { field: 'env["A=B"]', mentions: ["'='"] });
  });

  test('env value not a string → INVALID_SPEC naming the variable', async () => {
    for (const value of [1, true, null, undefined, ['x'], { a: 1 }]) {
      await runRejects({ exec: '/bin/true', env: { PORT: value } }, { field: 'env.PORT', mentions: ['must be a string'] });
      await createRejects({ label: 'w', env: { PORT: value } }, { field: 'env.PORT', mentions: ['must be a string'] });
    }
  });

  test('env of the wrong type → INVALID_SPEC', async () => {
    await runRejects({ exec: '/bin/true', env: 'A=B' }, { field: 'env', mentions: ['object of strings'] });
    await runRejects({ exec: '/bin/true', env: [['A', 'B']] }, { field: 'env' });
    await createRejects({ label: 'w', env: null }, { field: 'env' });
  });

  test('after all that, the workspace is unharmed and still runs commands', async () => {
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'echo "$FOO"'], env: { FOO: 'fine' } });
    assert.equal((await cmd.exited).status, 0);
    assert.equal((await ws.logs(cmd.id)).toString(), 'fine\n');
    await ws.stop({ graceMs: 0 });
    assert.deepEqual(childPids(), []);
  });
});

// ── numbers and types ────────────────────────────────────────────────────────────────

describe('durations, counts and types', () => {
  let rt: Runtime;
  let ws: Workspace;
  before(async () => {
    rt = await startRuntime();
    ws = await rt.createWorkspace({ label: 'numbers' });
  });
  after(() => rt.shutdown({ graceMs: 0 }));

  const badDurations: unknown[] = [-1, -0.5, NaN, Infinity, -Infinity, '100', null, true, [100], { ms: 100 }];

  async function createRejects(spec: unknown, expect: Expect): Promise<void> {
    const before = await baseline(rt);
    await rejectsWith(() => rt.createWorkspace(bad<WorkspaceSpec>(spec)), 'INVALID_SPEC', expect);
    await assertNothingLeft(rt, before);
  }

  async function runRejects(spec: unknown, expect: Expect): Promise<void> {
    const before = await baseline(rt);
    await rejectsWith(() => ws.run(bad<CommandSpec>(spec)), 'INVALID_SPEC', expect);
    await assertNothingLeft(rt, before, ws, 0);
  }

  test('ttlMs negative / NaN / Infinity / not a number / 0 → INVALID_SPEC', async () => {
    for (const ttlMs of [...badDurations, 0]) {
      await createRejects({ label: 'ttl', ttlMs }, { field: 'ttlMs' });
    }
  });

  test('graceMs in ws.stop: negative / NaN / Infinity / not a number → INVALID_SPEC; the workspace keeps running', async () => {
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    try {
      await waitForOutput(ws, cmd.id, 'ready');
      for (const graceMs of badDurations) {
        await rejectsWith(() => ws.stop({ graceMs: bad(graceMs) }), 'INVALID_SPEC', { field: 'graceMs' });
      }
      assert.equal(stateOf(ws.getSnapshot()), 'running');
      assert.ok(isAlive(cmd.pid));
      assert.deepEqual((await rt.listWorkspaces()).map((w) => w.id), [ws.id]);
    } finally {
      // Leave the shared workspace as it was: no process in it.
      const ws2 = ws;
      ws = await rt.createWorkspace({ label: 'numbers-2' });
      await ws2.stop({ graceMs: 0 });
    }
    assert.equal(isAlive(cmd.pid), false);
  });

  test('graceMs in rt.shutdown: negative / NaN / Infinity / not a number → INVALID_SPEC; the runtime stays open', async () => {
    const own = await startRuntime();
    try {
      const w = await own.createWorkspace({ label: 'shutdown-grace' });
      for (const graceMs of badDurations) {
        await rejectsWith(() => own.shutdown({ graceMs: bad(graceMs) }), 'INVALID_SPEC', { field: 'graceMs' });
      }
      // Nothing was closed by the bad calls.
      assert.equal((await own.health()).aliveWorkspaces, 1);
      assert.equal(stateOf(w.getSnapshot()), 'running');
    } finally {
      await own.shutdown({ graceMs: 0 });
    }
  });

  test('stop / shutdown options of the wrong type → a ShumaError, not a TypeError', async () => {
    const own = await startRuntime();
    try {
      const w = await own.createWorkspace({ label: 'options' });
      for (const options of [null, 'fast', 5]) {
        await rejectsWith(() => w.stop(bad(options)), ['INVALID_ARGUMENT', 'INVALID_SPEC'], { mentions: [/options|graceMs/] });
      }
      await rejectsWith(() => own.shutdown(bad(null)), ['INVALID_ARGUMENT', 'INVALID_SPEC'], { mentions: [/options|graceMs/] });
    } finally {
      await own.shutdown({ graceMs: 0 });
    }
  });

  test("a misspelt stop option ({ graceMS: 0 }) is refused with a hint, not silently ignored", async () => {
    const own = await startRuntime();
    try {
      const w = await own.createWorkspace({ label: 'typo' });
      await rejectsWith(() => w.stop(bad({ graceMS: 0 })), ['INVALID_ARGUMENT', 'INVALID_SPEC'], {
        mentions: ['graceMS', 'graceMs'],
      });
    } finally {
      await own.shutdown({ graceMs: 0 });
    }
  });

  test('restart.backoffMs negative / NaN / Infinity / not a number → INVALID_SPEC', async () => {
    for (const backoffMs of badDurations) {
      await runRejects({ exec: '/bin/false', restart: { onFailure: true, backoffMs } }, { field: 'restart.backoffMs' });
    }
  });

  test('restart.maxBackoffMs bad or < backoffMs → INVALID_SPEC', async () => {
    for (const maxBackoffMs of badDurations) {
      await runRejects({ exec: '/bin/false', restart: { onFailure: true, maxBackoffMs } }, { field: 'restart.maxBackoffMs' });
    }
    await runRejects(
      { exec: '/bin/false', restart: { onFailure: true, backoffMs: 500, maxBackoffMs: 100 } },
      { field: 'restart.maxBackoffMs', mentions: ['100', '500'], fix: /raise maxBackoffMs|lower backoffMs/ },
    );
    // Against the default backoff (200 ms).
    await runRejects(
      { exec: '/bin/false', restart: { onFailure: true, maxBackoffMs: 50 } },
      { field: 'restart.maxBackoffMs', mentions: ['50', '200'] },
    );
  });

  test('restart.maxRestarts negative / fractional / not a number → INVALID_SPEC', async () => {
    for (const maxRestarts of [-1, 1.5, 0.1, NaN, Infinity, '3', null]) {
      await runRejects({ exec: '/bin/false', restart: { onFailure: true, maxRestarts } }, {
        field: 'restart.maxRestarts',
        mentions: ['whole number'],
      });
    }
  });

  test('restart.onFailure missing or not a boolean → INVALID_SPEC', async () => {
    await runRejects({ exec: '/bin/false', restart: { backoffMs: 100 } }, { field: 'restart.onFailure', mentions: ['true or false'] });
    await runRejects({ exec: '/bin/false', restart: {} }, { field: 'restart.onFailure' });
    await runRejects({ exec: '/bin/false', restart: { onFailure: 'yes' } }, { field: 'restart.onFailure' });
    await runRejects({ exec: '/bin/false', restart: true }, { field: 'restart', mentions: ['must be an object'] });
  });

  test('label a number → INVALID_SPEC (workspace and command)', async () => {
    await createRejects({ label: 5 }, { field: 'label', mentions: ['must be a string', '5'] });
    await createRejects({}, { field: 'label' });
    await createRejects({ label: '' }, { field: 'label', mentions: ['non-empty'] });
    await runRejects({ exec: '/bin/true', label: 5 }, { field: 'label', mentions: ['must be a string'] });
  });

  test('workspace spec not an object → INVALID_SPEC', async () => {
    for (const spec of [null, undefined, 'ws', 3, [{ label: 'x' }]]) {
      await createRejects(spec, { field: 'spec', mentions: ['must be an object'] });
    }
  });

  test("unknown fields are refused with a 'did you mean' hint", async () => {
    await createRejects({ label: 'x', ttl: 5 }, { field: 'ttl', mentions: ["did you mean 'ttlMs'?"] });
    await createRejects({ label: 'x', limit: { nproc: 2 } }, { field: 'limit', mentions: ["did you mean 'limits'?"] });
    await createRejects({ label: 'x', limits: { memory: 5 } }, { field: 'limits.memory', mentions: ["did you mean 'memoryBytes'?"] });
    await runRejects({ exec: '/bin/true', args: ['x'] }, { field: 'args', mentions: ["did you mean 'argv'?"] });
    await runRejects({ exec: '/bin/true', restart: { onFailure: true, backoff: 10 } }, {
      field: 'restart.backoff',
      mentions: ["did you mean 'backoffMs'?"],
    });
    // No close match: still the list of known fields.
    await createRejects({ label: 'x', zzz: 1 }, { field: 'zzz', mentions: ['known fields'] });
  });

  test('other wrong types in a workspace spec → INVALID_SPEC', async () => {
    await createRejects({ label: 'x', limits: { nproc: -1 } }, { field: 'limits.nproc' });
    await createRejects({ label: 'x', limits: { nproc: 0 } }, { field: 'limits.nproc' });
    await createRejects({ label: 'x', limits: { memoryBytes: 1.5 } }, { field: 'limits.memoryBytes' });
    await createRejects({ label: 'x', limits: 'lots' }, { field: 'limits' });
    await createRejects({ label: 'x', quota: { memory: 'explode' } }, { field: 'quota.memory', mentions: ["'kill'"] });
    await createRejects({ label: 'x', cgroup: 1 }, { field: 'cgroup' });
    await createRejects({ label: 'x', flowDir: 2 }, { field: 'flowDir' });
  });

  test('a spec holding a function → INVALID_SPEC, nothing made', async () => {
    await createRejects({ label: 'x', env: { A: () => 'b' } }, { mentions: ['plain data'] });
    await runRejects({ exec: '/bin/true', label: () => 'x' }, { mentions: ['plain data'] });
  });
});

// ── after shutdown ───────────────────────────────────────────────────────────────────

describe('calls after rt.shutdown()', () => {
  test('every call → RUNTIME_CLOSED; no process is left', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'closing' });
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, cmd.id, 'ready');
    await rt.shutdown({ graceMs: 0 });
    assert.equal(isAlive(cmd.pid), false);
    assert.deepEqual(childPids(), []);

    const closed: Expect = { fix: /createRuntime/ };
    await rejectsWith(() => rt.createWorkspace({ label: 'late' }), 'RUNTIME_CLOSED', closed);
    await rejectsWith(() => rt.listWorkspaces(), 'RUNTIME_CLOSED', closed);
    await rejectsWith(() => rt.health(), 'RUNTIME_CLOSED', closed);
    throwsWith(() => rt.inspect(() => undefined), 'RUNTIME_CLOSED', closed);
    await rejectsWith(() => ws.run({ exec: '/bin/true' }), 'RUNTIME_CLOSED', closed);
    await rejectsWith(() => ws.stop(), 'RUNTIME_CLOSED', closed);
    await rejectsWith(() => ws.commands(), 'RUNTIME_CLOSED', closed);
    await rejectsWith(() => ws.logs(cmd.id), 'RUNTIME_CLOSED', closed);
    assert.equal(rt.workspace(ws.id), undefined);
    // A bad spec after shutdown: closed is what matters.
    await rejectsWith(() => rt.createWorkspace(bad({ label: 5 })), 'RUNTIME_CLOSED');
    assert.deepEqual(childPids(), [], 'no call after shutdown started a process');
  });

  test('shutdown twice (concurrently and after) resolves', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'twice' });
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, cmd.id, 'ready');
    const first = rt.shutdown({ graceMs: 0 });
    const second = rt.shutdown();
    await Promise.all([first, second]);
    await rt.shutdown();
    await rt.shutdown({ graceMs: 0 });
    assert.equal(isAlive(cmd.pid), false);
    assert.deepEqual(childPids(), []);
  });

  test('createWorkspace and run racing shutdown → RUNTIME_CLOSED, nothing made', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'race' });
    const creating = rt.createWorkspace({ label: 'racing' });
    const running = ws.run({ exec: fixture('forever.sh') });
    const closing = rt.shutdown({ graceMs: 0 });
    const [created, ran] = await Promise.allSettled([creating, running]);
    await closing;
    for (const outcome of [created, ran]) {
      assert.equal(outcome.status, 'rejected');
      checkError(outcome.reason, 'RUNTIME_CLOSED');
    }
    assert.deepEqual(childPids(), []);
  });
});

// ── ws.stop() twice ──────────────────────────────────────────────────────────────────

describe('ws.stop() twice', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime();
  });
  after(() => rt.shutdown({ graceMs: 0 }));

  test('concurrent stops both resolve with the same result', async () => {
    const ws = await rt.createWorkspace({ label: 'stop-twice' });
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, cmd.id, 'ready');
    const [a, b] = await Promise.all([ws.stop({ graceMs: 0 }), ws.stop()]);
    assert.deepEqual(a, b);
    assert.equal(a.reaped, 1);
    assert.equal(isAlive(cmd.pid), false);
    assert.deepEqual(childPids(), []);
  });

  test('a stop after it completed → WORKSPACE_NOT_FOUND', async () => {
    const before = await baseline(rt);
    const ws = await rt.createWorkspace({ label: 'stop-after' });
    const first = await ws.stop();
    assert.equal(first.reaped, 0);
    await rejectsWith(() => ws.stop(), 'WORKSPACE_NOT_FOUND', { mentions: [ws.id, 'already stopped'] });
    await rejectsWith(() => ws.stop({ graceMs: 0 }), 'WORKSPACE_NOT_FOUND');
    await assertNothingLeft(rt, before);
  });
});

// ── ws.stop() racing a restart backoff ───────────────────────────────────────────────

describe('ws.stop() racing a restart backoff', () => {
  test('nothing respawns and the command ends in stopped', async () => {
    const logLines: Array<{ msg?: string; command?: string; pid?: number }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
    // A manual clock: the backoff runs out only when the test says so, with no sleeping.
    const clock = new ManualClock();
    const rt = await startRuntime({ logger, clock });
    const ws = await rt.createWorkspace({ label: 'backoff-race' });
    const childrenBefore = childPids();
    const cmd = await ws.run({ exec: '/bin/false', restart: { onFailure: true, backoffMs: 300 } });
    const spawns = () => logLines.filter((l) => l.msg === 'command spawned' && l.command === cmd.commandKey);

    const inBackoff = await until(cmd, (s) => s.value === 'backoff', 'the command in backoff');
    const deadline = inBackoff.context.backoffDeadline;
    assert.equal(typeof deadline, 'number');
    const runsBefore = (await ws.commands()).length;
    const spawnsBefore = spawns().length;
    assert.equal(runsBefore, spawnsBefore);
    assert.equal(runsBefore, 1, 'the backoff (300 ms) has not run out yet');

    await clock.advance((deadline as number) - clock.now() - 1);
    assert.equal(stateOf(cmd.getSnapshot()), 'backoff', 'one ms before the relaunch');
    const statesAfterStop: string[] = [];
    const unsubscribe = cmd.subscribe((s) => statesAfterStop.push(stateOf(s)));
    const result = await ws.stop();
    assert.equal(result.reaped, 0);
    assert.equal(stateOf(cmd.getSnapshot()), 'stopped');
    assert.deepEqual(statesAfterStop, ['stopped'], 'straight from backoff to stopped');
    await rejectsWith(() => ws.commands(), 'WORKSPACE_NOT_FOUND');

    // Move well past the cancelled relaunch: advance() resolves once every due timer fired.
    await clock.advance(10_000);
    unsubscribe();
    assert.equal(spawns().length, spawnsBefore, 'no respawn after the stop');
    assert.deepEqual(statesAfterStop, ['stopped']);
    assert.deepEqual(childPids(), childrenBefore, 'no new child process');
    for (const line of spawns()) assert.equal(isAlive(line.pid!), false);
    assert.equal((await rt.health()).aliveCommands, 0);
    assert.deepEqual(await rt.listWorkspaces(), []);
    await rt.shutdown();
  });
});

// ── run() on a workspace not running ──────────────────────────────────────────────────

describe('run() on a workspace not running (still starting, stopping)', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime();
  });
  after(() => rt.shutdown({ graceMs: 0 }));

  test('→ WORKSPACE_STOPPED, nothing started', async () => {
    const ws = await rt.createWorkspace({ label: 'stopping' });
    const cmd = await ws.run({ exec: fixture('ignore-term.sh') });
    await waitForOutput(ws, cmd.id, 'ready');
    const childrenBefore = childPids();
    const stopping = ws.stop({ graceMs: 30_000 });
    await until(ws, (s) => stateOf(s) === 'reaping', 'the workspace reaping');
    await rejectsWith(() => ws.run({ exec: fixture('forever.sh') }), 'WORKSPACE_STOPPED', {
      mentions: [ws.id, 'stopping'],
      fix: /new workspace/,
    });
    // A bad spec on a stopping workspace: still WORKSPACE_STOPPED (the state is checked first).
    await rejectsWith(() => ws.run(bad({ exec: 5 })), 'WORKSPACE_STOPPED');
    assert.equal((await ws.commands()).length, 1);
    assert.deepEqual(childPids(), childrenBefore, 'no process started');
    // Shorten the grace: both stops resolve, with the same result.
    const [a, b] = await Promise.all([stopping, ws.stop({ graceMs: 0 })]);
    assert.deepEqual(a, b);
    assert.equal(a.reaped, 1);
    assert.equal(isAlive(cmd.pid), false);
    assert.deepEqual(childPids(), []);
  });

  test('run() on a workspace still starting → WORKSPACE_STARTING (not STOPPED: it will run), nothing started; the same run works once createWorkspace() resolves', async () => {
    // The handle is listed before the workspace's actor has answered its start; caught in that
    // window (a few tries, in case a start outruns the look-up), run() must say "wait", not "gone".
    let caught: ShumaError | undefined;
    for (let attempt = 0; attempt < 20 && !caught; attempt++) {
      const id = ulid();
      let settled = false;
      const created = rt.createWorkspace({ label: `starting-${attempt}` }, { id });
      void created.then(() => (settled = true), () => (settled = true));
      let ws = rt.workspace(id);
      while (!ws && !settled) {
        await new Promise((resolve) => setImmediate(resolve));
        ws = rt.workspace(id);
      }
      try {
        if (ws && !settled) {
          caught = await rejectsWith(() => ws.run({ exec: fixture('forever.sh') }), 'WORKSPACE_STARTING', {
            mentions: [id, 'still starting'],
            fix: /createWorkspace\(\) to resolve/,
          });
        }
        const started = await created;
        assert.deepEqual(await started.commands(), [], 'the refused run left no command');
        if (caught) {
          const cmd = await started.run({ exec: '/bin/true' });
          assert.equal((await cmd.exited).status, 0);
        }
      } finally {
        await (await created).stop({ graceMs: 0 });
      }
    }
    assert.ok(caught, 'never caught a workspace still starting in 20 tries');
    assert.deepEqual(childPids(), [], 'no process left');
  });

  test('run() issued right after stop() rejects (WORKSPACE_STOPPED or WORKSPACE_NOT_FOUND) and never hangs', async () => {
    for (let i = 0; i < 20; i++) {
      const ws = await rt.createWorkspace({ label: `race-${i}` });
      const stopping = ws.stop({ graceMs: 0 });
      const running = ws.run({ exec: fixture('forever.sh') });
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 5_000)));
      const outcome = await Promise.race([
        running.then(
          (c) => ({ ok: true as const, c }),
          (e: unknown) => ({ ok: false as const, e }),
        ),
        hung,
      ]);
      clearTimeout(timer);
      await stopping;
      assert.notEqual(outcome, 'hung', `iteration ${i}: run() after stop() never settled`);
      if (outcome !== 'hung') {
        if (outcome.ok) assert.fail(`iteration ${i}: run() after stop() started pid ${outcome.c.pid}`);
        assert.ok(isShumaError(outcome.e), String(outcome.e));
        assert.ok(
          outcome.e.code === 'WORKSPACE_STOPPED' || outcome.e.code === 'WORKSPACE_NOT_FOUND',
          outcome.e.message,
        );
      }
      assert.deepEqual(childPids(), [], `iteration ${i}: no process left`);
    }
    assert.deepEqual(await rt.listWorkspaces(), []);
    assert.equal((await rt.health()).aliveCommands, 0);
  });
});
