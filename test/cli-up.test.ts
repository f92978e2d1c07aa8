// `shuma up` driven as a user drives it: the built CLI as a child process, non-TTY output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { specSchemaText } from '../src/cli/spec-schema.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-cli-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  pid: number;
  lines: string[];
  stderr: () => string;
  /** Resolves with the first stdout line that matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

function shuma(args: string[]): Run {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let partial = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    pid: child.pid!,
    lines,
    stderr: () => stderr,
    exited,
    kill: (signal) => child.kill(signal),
    waitFor: (re, timeoutMs = 15_000) => {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} in:\n${lines.join('\n')}\n${stderr}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(timer); resolve(l); } });
        void exited.then(() => setTimeout(() => reject(new Error(`exited without a line matching ${re}:\n${lines.join('\n')}\n${stderr}`)), 50));
      });
    },
  };
}

/** `12:00:00.000 command   demo/crasher  backoff  …` → [kind, name, state] */
const fields = (line: string) => line.split(/\s+/).slice(1, 4);
const has = (lines: string[], kind: string, name: string, state: string) =>
  lines.some((l) => { const [k, n, s] = fields(l); return k === kind && n === name && s === state; });

function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(marker)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test('up examples/demo.yaml (npm start): the crasher backs off 200, 400, 800 ms then recovers, exit code 0', async () => {
  const run = shuma(['up', 'examples/demo.yaml']);
  const code = await run.exited;
  const { lines } = run;
  assert.equal(code, 0, `${lines.join('\n')}\n${run.stderr()}`);
  assert.ok(has(lines, 'workspace', 'demo', 'running'));
  assert.ok(has(lines, 'workspace', 'bounded', 'running'));
  assert.ok(lines.some((l) => /command\s+demo\/hello\s+exited\s+status 0/.test(l)));
  assert.ok(has(lines, 'pipeline', 'demo/sevens', 'succeeded'));
  assert.ok(lines.some((l) => /pipeline\s+demo\/sevens\s+succeeded\s+ok; exits gen=0 pick=0 count=0; restarts 0/.test(l)));
  const backoffs = lines.filter((l) => /command\s+demo\/crasher\s+backoff\s+status 3; relaunch in \d+ ms/.test(l));
  assert.deepEqual(backoffs.map((l) => /relaunch in (\d+) ms/.exec(l)![1]), ['200', '400', '800']);
  assert.ok(lines.some((l) => /command\s+demo\/crasher\s+exited\s+status 0/.test(l)));
  assert.ok(has(lines, 'command', 'bounded/work', 'exited'));
  assert.match(lines.at(-1)!, /done: 4 of 4 succeeded/);
  assert.equal(run.stderr(), '');
  // What the commands wrote, each line prefixed by its writer (as docker compose does), stderr too;
  // a command's last line before the event of its end.
  const said = lines.findIndex((l) => /^demo\/hello {10,}\| hello from \d+$/.test(l));
  assert.ok(said >= 0, lines.join('\n'));
  assert.ok(said < lines.findIndex((l) => /command\s+demo\/hello\s+exited/.test(l)));
  const crasher = lines.filter((l) => l.startsWith('demo/crasher ')).map((l) => l.replace(/^\S+\s+\| /, ''));
  // stderr in order across the runs; stdout ("recovered") is read apart from it.
  assert.deepEqual(crasher.filter((l) => l !== 'recovered'), ['attempt 1', 'crashing', 'attempt 2', 'crashing', 'attempt 3', 'crashing', 'attempt 4']);
  assert.ok(crasher.includes('recovered'));
  assert.ok(lines.some((l) => /^demo\/sevens\/count\s+\| \d+$/.test(l)));
  // States by the docs' names: no machine-internal substate (`reaping.terminating`).
  assert.deepEqual(lines.filter((l) => /^\d/.test(l) && (fields(l)[2] ?? '').includes('.')), []);
  // The crasher's attempt counter is removed when it succeeds.
  assert.deepEqual(readdirSync(tmpdir()).filter((f) => f === `shuma-demo-crasher.${run.pid}`), []);
});

test('up examples/crash-loop.yaml: the crash loop gives up after 3 restarts, exit code 1', async () => {
  const run = shuma(['up', 'examples/crash-loop.yaml']);
  const code = await run.exited;
  const { lines } = run;
  assert.equal(code, 1, `${lines.join('\n')}\n${run.stderr()}`);
  const backoffs = lines.filter((l) => /command\s+loop\/crasher\s+backoff\s+status 3; relaunch in \d+ ms/.test(l));
  assert.deepEqual(backoffs.map((l) => /relaunch in (\d+) ms/.exec(l)![1]), ['200', '400', '800']);
  assert.ok(lines.some((l) => /command\s+loop\/crasher\s+gaveUp\s+gave up after 3 restarts/.test(l)));
  assert.ok(lines.some((l) => /command\s+loop\/steady\s+exited\s+status 0/.test(l)));
  assert.match(lines.at(-1)!, /done: 1 of 2 succeeded; not succeeded: loop\/crasher/);
  assert.equal(run.stderr(), '');
});

test('up examples/ok.json: everything succeeds, exit code 0', async () => {
  const run = shuma(['up', 'examples/ok.json']);
  assert.equal(await run.exited, 0, run.lines.join('\n') + run.stderr());
  assert.ok(run.lines.some((l) => /command\s+ok\/greet\s+exited\s+status 0/.test(l)));
  assert.ok(run.lines.some((l) => /pipeline\s+ok\/first-line\s+succeeded\s+ok; exits yes=SIGPIPE head=0/.test(l)));
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} stops everything gracefully, exit code 1, no process left`, async () => {
    const marker = `shuma-cli-marker-${process.pid}-${signal}`;
    const seconds = String(30_000 + Math.floor(Math.random() * 9_000));
    const file = path.join(scratch, `long-${signal}.yaml`);
    writeFileSync(file, [
      'workspaces:',
      '  - label: long',
      '    commands:',
      `      - { label: sleeper, exec: /bin/sh, argv: [-c, 'sleep ${seconds}; true', ${marker}] }`,
      `      - { label: looper, exec: /bin/sh, argv: [-c, 'exit 1', ${marker}], restart: { onFailure: true, backoffMs: 5000 } }`,
      '    pipelines:',
      '      - label: pipe',
      '        nodes:',
      `          - { label: src, exec: /bin/sh, argv: [-c, 'sleep ${seconds}; true', ${marker}] }`,
      '          - { label: sink, exec: cat }',
      '        edges: [ { from: src, to: sink } ]',
      '',
    ].join('\n'));
    const run = shuma(['up', file]);
    await run.waitFor(/command\s+long\/sleeper\s+running\s+pid \d+/);
    await run.waitFor(/command\s+long\/looper\s+backoff\s+status 1; relaunch in 5000 ms/);
    await run.waitFor(/pipeline\s+long\/pipe\s+running\s+pids/);
    assert.ok(processesWith(marker).length > 0, 'the marked processes run');
    run.kill(signal);
    assert.equal(await run.exited, 1, run.lines.join('\n') + run.stderr());
    assert.ok(run.lines.some((l) => l.includes(`${signal}: stopping everything`)));
    assert.ok(has(run.lines, 'command', 'long/sleeper', 'stopped'));
    assert.ok(has(run.lines, 'command', 'long/looper', 'stopped'));
    assert.ok(!run.lines.some((l) => /reaping\./.test(l)), run.lines.join('\n'));
    assert.match(run.lines.at(-1)!, /done: 0 of 3 succeeded/);
    assert.deepEqual(processesWith(marker), []);
    assert.deepEqual(processesWith(`sleep\0${seconds}`), []);
  });
}

test('a spec file with an error at a known line: file:line:column, the field, exit code 2', async () => {
  const file = path.join(scratch, 'bad.yaml');
  writeFileSync(file, [
    'workspaces:',                                 // 1
    '  - label: w',                                // 2
    '    pipelines:',                              // 3
    '      - label: p',                            // 4
    '        nodes:',                              // 5
    '          - { label: a, exec: seq }',         // 6
    '          - label: b',                        // 7
    '            exec: 5',                         // 8
    '        edges: []',                           // 9
    '',
  ].join('\n'));
  const run = shuma(['up', file]);
  assert.equal(await run.exited, 2);
  assert.equal(run.stderr(), `shuma: ${file}:8:13: workspaces[0].pipelines[0].nodes[1].exec must be a string (got 5)\n`);
  assert.deepEqual(run.lines, []);

  const unknown = path.join(scratch, 'unknown.json');
  writeFileSync(unknown, '{\n  "workspaces": [ { "label": "w" } ],\n  "extra": 1\n}\n');
  const run2 = shuma(['up', unknown]);
  assert.equal(await run2.exited, 2);
  assert.equal(run2.stderr(), `shuma: ${unknown}:3:3: extra is not a known field; known fields: workspaces\n`);
});

test('shuma --help documents the exit codes; no arguments is a usage error', async () => {
  const help = shuma(['--help']);
  assert.equal(await help.exited, 0);
  const text = help.lines.join('\n');
  for (const code of ['0  every command', '1  some command', '2  usage error']) assert.ok(text.includes(code), code);
  const none = shuma([]);
  assert.equal(await none.exited, 2);
});

test('--inspect prints the inspector URL', async () => {
  const run = shuma(['up', '--inspect', 'examples/ok.json']);
  const line = await run.waitFor(/inspector: http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} inspector: /);
  assert.equal(await run.exited, 0, run.lines.join('\n') + run.stderr());
});

test('schema/shuma-spec.schema.json is the one generated from the validators (npm run schema)', () => {
  const onDisk = readFileSync(path.join(ROOT, 'schema/shuma-spec.schema.json'), 'utf8');
  assert.equal(onDisk, specSchemaText(), 'stale: run npm run schema');
  const schema = JSON.parse(onDisk) as { $defs: Record<string, { properties?: Record<string, unknown> }> };
  assert.deepEqual(Object.keys(schema.$defs.workspace!.properties!).sort(), ['cgroup', 'commands', 'cwd', 'env', 'flowDir', 'groups', 'label', 'limits', 'pipelines', 'placement', 'quota', 'supervision', 'ttlMs']);
  assert.ok(!('workspace' in schema.$defs.pipeline!.properties!), 'a pipeline in the file has no workspace field');
});
