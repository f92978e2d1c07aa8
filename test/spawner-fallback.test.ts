// Where the addon was not built (no compiler at `npm ci`, another OS), shuma must still run —
// on child_process — and say so; asked for the native spawner explicitly, it must refuse.
// The package is copied without its build/ directory, as such an install would be.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const unbuilt = mkdtempSync(path.join(tmpdir(), 'shuma-unbuilt-'));

before(() => {
  cpSync(path.join(ROOT, 'dist/src'), path.join(unbuilt, 'dist/src'), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(unbuilt, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(unbuilt, 'node_modules'));
});
after(() => rmSync(unbuilt, { recursive: true, force: true }));

/** Starts a runtime of the unbuilt copy in a process of its own, runs one command, reports. */
const PROBE = `
  const { createRuntime } = await import(process.argv[1]);
  let rt;
  try {
    rt = await createRuntime({ workers: 1, statsIntervalMs: 0 });
  } catch (error) {
    console.log(JSON.stringify({ refused: error.message }));
    process.exit(0);
  }
  const ws = await rt.createWorkspace({ label: 'fallback' });
  const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'echo ran on $0'] });
  const exit = await cmd.exited;
  const out = (await ws.logs(cmd.id)).toString();
  const { spawner } = await rt.health();
  await rt.shutdown({ graceMs: 0 });
  console.log(JSON.stringify({ spawner, warnings: rt.warnings, exit, out }));
`;

/** The probe run against the package at `root`, with `env` over ours (SHUMA_SPAWNER dropped). */
async function probe(env: Record<string, string>, root = unbuilt): Promise<Record<string, unknown>> {
  const { SHUMA_SPAWNER: _ignored, ...inherited } = process.env;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', PROBE, path.join(root, 'dist/src/index.js')], {
    env: { ...inherited, ...env },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

test('without the built addon the runtime starts processes with child_process and warns why', async () => {
  const report = await probe({});
  assert.equal(report.spawner, 'node');
  const warnings = report.warnings as string[];
  assert.ok(
    warnings.some((w) => /native spawner cannot load .*child_process/.test(w)),
    `a warning that says so: ${JSON.stringify(warnings)}`,
  );
  assert.deepEqual(report.exit, { code: 0, signal: null, status: 0 });
  assert.equal(report.out, 'ran on /bin/sh\n');
});

test('SHUMA_SPAWNER=native without the built addon: createRuntime refuses and says why', async () => {
  const report = await probe({ SHUMA_SPAWNER: 'native' });
  assert.match(String(report.refused), /SHUMA_SPAWNER=native but the native spawner cannot load/);
});

test('SHUMA_SPAWNER=node without the built addon: child_process, and no warning (it was asked for)', async () => {
  const report = await probe({ SHUMA_SPAWNER: 'node' });
  assert.equal(report.spawner, 'node');
  assert.ok(!(report.warnings as string[]).some((w) => /native spawner/.test(w)));
});

// Keeps the probe honest: where the addon is built, the same probe must see it. CI builds it
// (.ci/run fails otherwise); a checkout whose build failed skips this one.
const unbuiltHere =
  !existsSync(path.join(ROOT, 'build/Release/shuma_spawner.node')) && !process.env.CI ? 'the addon is not built in this checkout' : false;
test('with the built addon the same probe runs on the native spawner, without a warning', { skip: unbuiltHere }, async () => {
  const report = await probe({}, ROOT);
  assert.equal(report.spawner, 'native');
  assert.ok(!(report.warnings as string[]).some((w) => /native spawner/.test(w)));
});
