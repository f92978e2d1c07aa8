// The package as a user gets it: packed from a tree without dist/ (as a clean clone is, so the
// `prepack` build must make it), installed from the tarball into an empty directory (which runs
// the `install` script's node-gyp build), then used as a command and as a module.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './daemon-helpers.js';

const run = promisify(execFile);
const scratch = mkdtempSync('/tmp/shuma-pack-');
after(() => rmSync(scratch, { recursive: true, force: true }));

/** What a clone holds that the build reads: the sources, not dist/ nor build/. */
const SOURCES = ['package.json', 'package-lock.json', 'tsconfig.json', 'LICENSE', 'README.md', 'binding.gyp', 'src', 'test', 'bench', 'examples', 'scripts', 'schema', 'native'];

// Quiet, and from the cache where it can: the dependencies were fetched by this tree's `npm ci`.
const NPM_ENV = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_loglevel: 'error' };

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, env: NPM_ENV, maxBuffer: 16 << 20 });
  return stdout;
}

test('npm pack from a tree without dist/ builds it, ships the runtime and not the tests; the tarball installs and runs', async () => {
  const clone = path.join(scratch, 'clone');
  for (const entry of SOURCES) cpSync(path.join(ROOT, entry), path.join(clone, entry), { recursive: true });
  // The dev dependencies (typescript) as `npm ci` would have put them there.
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'));
  assert.equal(existsSync(path.join(clone, 'dist')), false);

  const packed = JSON.parse(await npm(['pack', '--json', '--pack-destination', scratch], clone)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed[0]!.files.map((f) => f.path);
  for (const needed of ['LICENSE', 'README.md', 'package.json', 'binding.gyp', 'native/addon.c', 'schema/shuma-spec.schema.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'src/inspector/public/index.html']) {
    assert.ok(files.includes(needed), `${needed} is in the tarball`);
  }
  const unwanted = files.filter((f) => /^(dist\/(test|bench|examples|scripts)\/|test\/|bench\/|\.ci\/|docs\/|build\/)|\.png$|\.map$/.test(f));
  assert.deepEqual(unwanted, []);
  assert.match(readFileSync(path.join(clone, 'LICENSE'), 'utf8'), /^MIT License/);

  const consumer = path.join(scratch, 'consumer');
  cpSync(path.join(scratch, packed[0]!.filename), path.join(consumer, packed[0]!.filename));
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await npm(['install', '--prefer-offline', `./${packed[0]!.filename}`], consumer);
  const installed = path.join(consumer, 'node_modules/shuma');
  assert.deepEqual(readdirSync(path.join(installed, 'build/Release')).filter((f) => f.endsWith('.node')), ['shuma_spawner.node'], 'the install script built the native spawner');

  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const { stdout: printed } = await run('npx', ['--no-install', 'shuma', '--version'], { cwd: consumer, env: NPM_ENV });
  assert.equal(printed, `${version}\n`);

  // The module, from outside the tree: a real command through the installed native spawner.
  const script = `
    import { createRuntime, ShumaError } from 'shuma';
    const rt = await createRuntime({ workers: 1 });
    try {
      const ws = await rt.createWorkspace({ label: 'packed' });
      const c = await ws.run({ exec: 'echo', argv: ['from the tarball'] });
      const exit = await c.exited;
      process.stdout.write(JSON.stringify({ status: exit.status, out: (await ws.logs(c.id)).toString(), error: typeof ShumaError }));
    } finally {
      await rt.shutdown({ graceMs: 0 });
    }`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer });
  assert.deepEqual(JSON.parse(stdout), { status: 0, out: 'from the tarball\n', error: 'function' });
});
