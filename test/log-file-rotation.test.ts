// A log file's rotation as a reader sees it: every name that existed once stays present while
// the files shift (`out.log` → `.1` → `.2`), and an in-process read never meets a rotation.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { LogFile } from '../src/host/processes/log-file.js';
import { readTail } from '../src/host/processes/log-tail.js';

const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function logFile(keep: number): { file: LogFile; names: string[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-rotation-'));
  dirs.push(dir);
  const file = new LogFile(path.join(dir, 'out.log'), { maxBytes: 120, keep }, false, (error) => { throw error; }, async () => {});
  return { file, names: [file.path, ...Array.from({ length: keep }, (_, i) => `${file.path}.${i + 1}`)] };
}

/** The line `n` as written: 60 bytes, two to a file (at most 120 bytes). */
const line = (n: number) => `${String(n).padStart(58, '0')}\n`;

describe('log file rotation', () => {
  test('no name goes missing while the files shift: a stat between any two steps of a rotation finds every file that existed', async () => {
    const { file, names } = logFile(2);
    // A check on every turn of the loop: rotation's steps are separate file-system calls, each
    // awaited, so this runs between them.
    const seen = new Set<string>();
    const missing: string[] = [];
    let checking = true;
    const check = () => {
      for (const name of names) {
        if (existsSync(name)) seen.add(name);
        else if (seen.has(name)) missing.push(path.basename(name));
      }
      if (checking) setImmediate(check);
    };
    check();
    for (let n = 0; n < 40; n++) {
      file.write(Buffer.from(line(n)));
      await file.flush();
    }
    checking = false;
    await file.close();
    assert.deepEqual(missing, [], 'a file that existed was missing during a rotation');
    assert.equal(seen.size, names.length, 'the files were rotated, up to the kept count');
    assert.ok(!existsSync(`${file.path}.3`) && !existsSync(`${file.path}.rotating`), 'nothing beyond the kept files is left');
    // Two lines per file: the newest six lines, in order, across the three files.
    const all = names.map((name) => readFileSync(name, 'latin1')).reverse().join('');
    assert.equal(all, [34, 35, 36, 37, 38, 39].map(line).join(''));
  });

  test('a rotation waits for a read under way: the read sees each byte under one name', async () => {
    const { file, names } = logFile(2);
    const [current, first] = [names[0]!, names[1]!];
    file.write(Buffer.from(line(0) + line(1)));
    await file.flush();
    await file.whileSteady(async () => {
      // This line needs a rotation, which must wait: give it turns of the loop and time to run.
      file.write(Buffer.from(line(2)));
      const until = Date.now() + 50;
      while (Date.now() < until) await new Promise<void>((resolve) => setImmediate(resolve));
      assert.ok(!existsSync(first), 'no rotation during the read');
      assert.equal(readFileSync(current, 'latin1'), line(0) + line(1));
    });
    await file.flush();
    assert.equal(readFileSync(first, 'latin1'), line(0) + line(1), 'rotated once the read was done');
    assert.equal(readFileSync(current, 'latin1'), line(2));
    await file.close();
  });

  test('a read under a flood waits for what was written before it, not for the flood to end', { timeout: 120_000 }, async (t) => {
    const { file, names } = logFile(2);
    // A writer that adds a line on every turn of the loop until the read is answered: the
    // file's writer is never idle. A read that waited for idleness would never be answered:
    // this test would time out (and the flood stop with it).
    let n = 0;
    let flooding = true;
    const flood = () => {
      file.write(Buffer.from(line(n++)));
      if (flooding && !t.signal.aborted) setImmediate(flood);
    };
    flood();
    await new Promise<void>((resolve) => setImmediate(resolve));
    const before = n;
    const tail = await file.whileSteady(() => readTail(names[0]!, 2, { lines: 1 }));
    flooding = false;
    await new Promise<void>((resolve) => setImmediate(resolve));
    await file.close();
    const last = Number(tail.toString('latin1').trim());
    assert.ok(last >= before - 1, `the read saw line ${last}, written before it was asked for (${before - 1})`);
  });
});
