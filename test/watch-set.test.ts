// The descriptors the loop watches for the native spawner (a child's pidfd, its silent output
// pipes) sit in one epoll set of the addon's (native/watch-set.c): news that comes together is
// handed out one callback each, an entry taken out is never told again, and the set keeps the
// process alive exactly while it watches something.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync } from 'node:fs';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ADDON_PATH, loadSpawnerAddon, type OutputWatchHandle, type SpawnerAddon } from '../src/host/spawn/native-addon.js';
import { NativeSpawner } from '../src/host/spawn/native-spawner.js';

function addonProblem(): string | false {
  try {
    const addon = loadSpawnerAddon();
    if (!addon.outputWatch || !addon.envBlock) return 'the addon was built without outputWatch or envBlock';
    return false;
  } catch (error) {
    return `the native spawner does not load here: ${(error as Error).message}`;
  }
}

const skip = addonProblem();
const ENV = { PATH: '/usr/bin:/bin' };

describe('the addon\'s watch set', { skip }, () => {
  const addon = (skip ? null : loadSpawnerAddon()) as SpawnerAddon;

  test('outputs that end together are told one callback each; one taken out by another\'s callback is never told', async () => {
    const pipes = Array.from({ length: 4 }, () => addon.pipe!());
    const told: number[] = [];
    const stillWatching: boolean[] = [];
    const watches: OutputWatchHandle[] = [];
    let first: () => void;
    const firstTold = new Promise<void>((resolve) => (first = resolve));
    for (const [i, [readFd]] of pipes.entries()) {
      watches.push(
        addon.outputWatch!(readFd, (ended) => {
          told.push(i);
          assert.equal(ended, true);
          // The first told takes every other out: their news is in the same batch of events.
          if (told.length === 1) for (const [j, watch] of watches.entries()) if (j !== i) stillWatching.push(addon.outputUnwatch!(watch));
          first();
        }),
      );
    }
    // Every writer gone before the loop looks: all four are ready at once.
    for (const [, writeFd] of pipes) closeSync(writeFd);
    await firstTold;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(told.length, 1, `told once in all: ${told.join(', ')}`);
    assert.deepEqual(stillWatching, [true, true, true], 'the other three were still watched when taken out');
    for (const [readFd] of pipes) closeSync(readFd);
  });

  test('children that exit together are each told once, with their own status', async () => {
    const spawner = new NativeSpawner(addon);
    const children = await Promise.all(
      Array.from({ length: 8 }, (_, i) => spawner.spawn({ file: '/bin/sh', argv0: 'sh', args: ['-c', `exit ${i + 1}`], env: ENV, cwd: '/' })),
    );
    const exits = await Promise.all(
      children.map((child) => {
        let calls = 0;
        return new Promise<number | null>((resolve) =>
          child.onExit((code) => {
            calls++;
            assert.equal(calls, 1);
            resolve(code);
          }),
        );
      }),
    );
    assert.deepEqual(exits, [1, 2, 3, 4, 5, 6, 7, 8]);
    await Promise.all(children.map((child) => new Promise<void>((resolve) => child.onOutputEnd(resolve))));
  });

  test('a process that waits only for a watched child stays until its exit is told, then ends', async () => {
    // Nothing but the watch set holds this process's loop open while the child sleeps.
    const script = `
      const addon = require(${JSON.stringify(ADDON_PATH)});
      addon.spawnAsync('/bin/sh', ['sh', '-c', 'sleep 0.3; exit 7'], [], '/', [addon.STDIO_NULL, addon.STDIO_PIPE, addon.STDIO_PIPE], [-1, -1, -1, -1], [],
        (code) => console.log('exit', code)).then((child) => {
          for (const fd of [child.stdout, child.stderr]) addon.outputWatch(fd, (ended) => console.log('output ended', ended));
        });
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { timeout: 20_000 });
    assert.deepEqual(stdout.trim().split('\n').sort(), ['exit 7', 'output ended true', 'output ended true']);
  });

  test('an environment block: every spawn given it sees its variables; any other value is refused', async () => {
    const block = addon.envBlock!(['SHUMA_WATCH_SET_TEST=block', 'PATH=/usr/bin:/bin']);
    for (let i = 0; i < 3; i++) {
      const said = await new Promise<string>((resolve, reject) => {
        addon
          .spawnAsync('/bin/sh', ['sh', '-c', 'test "$SHUMA_WATCH_SET_TEST" = block'], block, '/', [addon.STDIO_NULL, addon.STDIO_NULL, addon.STDIO_NULL], [-1, -1, -1, -1], [], (code) =>
            resolve(`exit ${code}`),
          )
          .catch(reject);
      });
      assert.equal(said, 'exit 0');
    }
    const [readFd, writeFd] = addon.pipe!();
    const notABlock = addon.outputWatch!(readFd, () => {});
    assert.throws(
      () => addon.spawnAsync('/bin/true', ['true'], notABlock as never, '/', [addon.STDIO_NULL, addon.STDIO_NULL, addon.STDIO_NULL], [-1, -1, -1, -1], [], () => {}),
      (error: Error & { code?: string }) => error.code === 'EINVAL',
    );
    assert.throws(() => addon.envBlock!([1, 2] as never), (error: Error & { code?: string }) => error.code === 'EINVAL');
    addon.outputUnwatch!(notABlock);
    closeSync(readFd);
    closeSync(writeFd);
  });
});
