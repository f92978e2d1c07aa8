import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The house rule (docs/architecture.md): a folder says where its code runs, and no import runs
// back up a layer — protocol ← machines ← actors (worker threads) / host's parts (main thread)
// ← the runtime facade (src/host/*.ts) ← inspector, testing ← the package entry (src/*.ts) ← cli.
// Read from the sources, type-only imports included: a type import is a dependency for a reader.

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

interface Layer {
  name: string;
  rank: number;
}

/** Where a file sits in the house, from its path under src. */
function layerOf(file: string): Layer {
  const [top, second] = file.split('/');
  if (top === 'protocol') return { name: 'protocol', rank: 0 };
  if (top === 'machines') return { name: 'machines', rank: 1 };
  if (top === 'actors') return { name: 'actors (worker threads)', rank: 2 };
  if (top === 'host') {
    return second !== undefined && second.endsWith('.ts')
      ? { name: 'runtime facade (src/host/*.ts)', rank: 3 }
      : { name: `host/${second} (main thread)`, rank: 2 };
  }
  if (top === 'inspector' || top === 'testing') return { name: top, rank: 4 };
  if (top !== undefined && top.endsWith('.ts')) return { name: 'package entry (src/*.ts)', rank: 5 };
  if (top === 'cli') return { name: 'cli', rank: 6 };
  throw new Error(`src/${file} is in no layer: add its folder to test/layers.test.ts and docs/architecture.md`);
}

function sourceFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full, `${prefix}${name}/`);
    return name.endsWith('.ts') ? [`${prefix}${name}`] : [];
  });
}

/** Every relative module a file imports or re-exports (static or dynamic), as a path under src. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(SRC, file), 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'(\.[^']+)'/gm)].map((m) => m[1]!);
  return specs.map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
}

function graph(): Map<string, string[]> {
  return new Map(sourceFiles(SRC).map((file) => [file, importsOf(file)]));
}

/** Whether an import from one layer to another is allowed. */
function problemWith(from: string, to: string): string | null {
  const a = layerOf(from);
  const b = layerOf(to);
  if (b.rank > a.rank) return `${from} (${a.name}) imports ${to} (${b.name}): back up a layer`;
  // The worker threads and the main thread share only protocol and machines.
  const sides = (l: Layer) => (l.name.startsWith('actors') ? 'worker' : l.name.startsWith('host/') ? 'main' : null);
  const sa = sides(a);
  const sb = sides(b);
  if (sa !== null && sb !== null && sa !== sb) return `${from} (${a.name}) imports ${to} (${b.name}): across threads`;
  // The runtime's users read it through its facade and its declared view (runtime-view.ts), never
  // its parts. (The package entry re-exports public types from where they are defined.)
  if (['cli', 'inspector', 'testing'].includes(a.name) && b.name.startsWith('host/')) return `${from} (${a.name}) imports ${to} (${b.name}): past the runtime facade`;
  return null;
}

/** One cycle in the graph, as a path, or null. */
function findCycle(edges: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === 'done') return null;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of edges.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

test('every file of src is in a layer and imports only what exists', () => {
  const edges = graph();
  assert.ok(edges.size > 50, `read ${edges.size} files from ${SRC}`);
  for (const [file, imports] of edges) {
    layerOf(file);
    for (const target of imports) assert.ok(edges.has(target), `${file} imports ${target}, which is not a source file`);
  }
});

test('no import runs back up a layer, nor across threads', () => {
  const problems = [...graph()].flatMap(([file, imports]) =>
    imports.map((target) => problemWith(file, target)).filter((p): p is string => p !== null),
  );
  assert.deepEqual(problems, []);
});

test('no file imports itself through a circle', () => {
  assert.equal(findCycle(graph())?.join(' → ') ?? null, null);
});

test("no folder imports itself through a circle (src/host's parts included)", () => {
  const folderOf = (file: string) => {
    const parts = file.split('/');
    // src/host/*.ts is the facade; src/host/<part>/ are its parts, each a folder of its own.
    return parts[0] === 'host' && parts.length > 2 ? `host/${parts[1]}` : parts.length > 1 ? parts[0]! : '(entry)';
  };
  const folders = new Map<string, string[]>();
  for (const [file, imports] of graph()) {
    const from = folderOf(file);
    const list = folders.get(from) ?? [];
    for (const target of imports) if (folderOf(target) !== from) list.push(folderOf(target));
    folders.set(from, [...new Set(list)]);
  }
  assert.equal(findCycle(folders)?.join(' → ') ?? null, null);
});

test('the checks catch what they are meant to catch', () => {
  // A guard against a rule that passes because it reads nothing: known bad edges fail.
  assert.match(problemWith('protocol/control.ts', 'host/stats.ts') ?? '', /back up a layer/);
  assert.match(problemWith('host/runtime.ts', 'inspector/server.ts') ?? '', /back up a layer/);
  assert.match(problemWith('host/main-actors/reaper.ts', 'actors/worker-actors.ts') ?? '', /across threads/);
  assert.match(problemWith('machines/command-machine.ts', 'host/core/registry.ts') ?? '', /back up a layer/);
  assert.match(problemWith('cli/names.ts', 'host/core/runtime-core.ts') ?? '', /past the runtime facade/);
  assert.equal(problemWith('cli/names.ts', 'host/runtime-view.ts'), null);
  assert.equal(problemWith('cli/daemon.ts', 'create-runtime.ts'), null);
  assert.deepEqual(findCycle(new Map([['a', ['b']], ['b', ['a']]])), ['a', 'b', 'a']);
});
