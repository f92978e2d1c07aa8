// (j) Pipeline throughput: 2 GiB through `head -c 2G /dev/zero | cat | cat`, side by side in one
// run: bash, shuma untapped (kernel pipes between the nodes, bytes never in JavaScript) and
// shuma tapped (every edge pumped through the runtime, metered, published on a flow socket).
//
// Two endings of the same 3-node pipeline:
// - the last `cat` captured: its stdout goes to its log ring (1 MiB kept) like any command's,
//   so 2 GiB also cross a pipe into the runtime — a hop bash's `> /dev/null` does not have (a
//   flood like this one is taken by the addon's capture thread, spliced, not read into Node);
// - the last node `sh -c 'cat > /dev/null'`: the same ending as bash, so the ratio is the cost
//   of the pipes between the nodes alone.
// And the first ending again with log files on (a runtime with a stateDir: every captured
// output is also written to rotated files), against the same without files: what the files
// cost the capture, a ratio in one run.
// Also reported: the CPU time of every process involved, per GiB — steadier than wall time on
// a shared machine, and what bounds the throughput when the cores are few — and the runtime's
// own share of it (the capture's reads, the pumps' splices).
// And the tapped pipeline with a flow reader (another process) on its last edge from the first
// byte: what feeding a reader costs the runtime, its loop's thread above all (the reader's copy
// went through JavaScript there until the addon's fanout thread took it, issue 17 point 4).
// And bash with a fourth stage (`… | cat | cat > /dev/null`): the captured ending adds one hop
// (the last node writes into a pipe, the runtime reads it into the ring) that bash's
// `> /dev/null` does not have; a fourth stage pays the same two copies, so the captured ending
// against it says what the capture costs beyond the hop itself.
// And the issue 17 rows each against two baselines: the issue's (bash, `… | cat > /dev/null`)
// and a fair twin, bash doing the same work shuma does — the runtime's hops done by a relay that
// splice(2)s stdin to stdout and counts (RELAY_SOURCE): for the captured ending a reader of the
// last cat's pipe (`… | cat | relay > /dev/null`, as the ring splices it away), for the tapped
// pipeline a relay on every edge (`head | relay | cat | relay | …`, as the pumps). Each row's
// per-round ratios are given too (the spread). SHUMA_BENCH_PIPELINE_ROUNDS sets the rounds (3);
// SHUMA_BENCH_PIPELINE=rows runs only the rows and their baselines (a quiet run stays short).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRuntime, type PipelineSpec, type Runtime } from '../src/index.js';
import { now, progress, type Line } from './measure.js';

const BYTES = 2 * 2 ** 30;
const GIB = 2 ** 30;

type Ending = 'captured' | 'devnull';

/**
 * Wall time, and CPU time of every process involved (this one and all it reaped), this one's
 * own, and its loop thread's (the main thread, which runs every host actor): its CPU time and
 * how often it was woken (voluntary context switches).
 */
interface Cost {
  ms: number;
  cpuS: number;
  ownS: number;
  loopS: number;
  loopWakeups: number;
}

/** Clock ticks per second of /proc's times (sysconf(_SC_CLK_TCK): 100 on Linux). */
const CLK_TCK = 100;

/**
 * CPU seconds used so far by this process (all threads) and by the children it reaped —
 * with theirs, since a child's figures include the grandchildren it waited for.
 */
function cpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): cutime and cstime are fields 16 and 17.
  const reaped = (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
  const own = process.cpuUsage();
  return reaped + (own.user + own.system) / 1e6;
}

/** The main thread's CPU seconds and voluntary context switches (its wake-ups). */
function loopThread(): { s: number; wakeups: number } {
  const task = `/proc/self/task/${process.pid}`;
  const stat = readFileSync(`${task}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`${task}/status`, 'latin1');
  const wakeups = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  // utime and stime are fields 14 and 15.
  return { s: (Number(fields[11]) + Number(fields[12])) / CLK_TCK, wakeups };
}

function ownSeconds(): number {
  const own = process.cpuUsage();
  return (own.user + own.system) / 1e6;
}

async function measure(run: () => Promise<void>): Promise<Cost> {
  const cpu = cpuSeconds();
  const own = ownSeconds();
  const loop = loopThread();
  const start = now();
  await run();
  const ms = now() - start;
  const loopAfter = loopThread();
  return { ms, cpuS: cpuSeconds() - cpu, ownS: ownSeconds() - own, loopS: loopAfter.s - loop.s, loopWakeups: loopAfter.wakeups - loop.wakeups };
}

const BASH = 'head -c 2G /dev/zero | cat | cat > /dev/null';
/** The captured ending's hop, in bash: the last cat writes into a pipe that a fourth stage reads. */
const BASH_FOUR_STAGES = 'head -c 2G /dev/zero | cat | cat | cat > /dev/null';
/**
 * Each stage the leader of a session of its own (setsid), as shuma started nodes until the
 * native spawner kept them in the runtime's session (child_process still does: `detached`).
 * With the scheduler's autogroups (on here: one group per session) that alone costs bash
 * about twice its CPU under load; this variant shows how much, in the same run.
 */
const BASH_SETSID = 'setsid -w head -c 2G /dev/zero | setsid -w cat | setsid -w cat > /dev/null';

/**
 * The fair twins' relay: what one of the runtime's hops does, in the cheapest way a program can —
 * splice(2) from its stdin into its stdout (a pipe, or /dev/null for a reader), counting.
 */
const RELAY_SOURCE = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
  long long n = 0;
  for (ssize_t got; (got = splice(0, NULL, 1, NULL, 1 << 20, SPLICE_F_MOVE)) > 0;) n += got;
  return n >= 0 ? 0 : 1;
}
`;

/** The twins, by the relay's path. */
function twins(relay: string): Record<'captured' | 'tappedCaptured' | 'tappedDevnull', string> {
  return {
    captured: `head -c 2G /dev/zero | cat | cat | ${relay} > /dev/null`,
    tappedCaptured: `head -c 2G /dev/zero | ${relay} | cat | ${relay} | cat | ${relay} > /dev/null`,
    tappedDevnull: `head -c 2G /dev/zero | ${relay} | cat | ${relay} | cat > /dev/null`,
  };
}

function bashRun(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`bash exited ${code}`))));
  });
}

function spec(workspace: string, tap: boolean, ending: Ending): PipelineSpec {
  return {
    label: `throughput-${tap ? 'tapped' : 'untapped'}-${ending}`,
    workspace,
    tap,
    nodes: [
      { label: 'head', exec: 'head', argv: ['-c', '2G', '/dev/zero'] },
      { label: 'cat1', exec: 'cat' },
      ending === 'captured' ? { label: 'cat2', exec: 'cat' } : { label: 'cat2', exec: 'sh', argv: ['-c', 'cat > /dev/null'] },
    ],
    edges: [
      { from: 'head', to: 'cat1' },
      { from: 'cat1', to: 'cat2' },
    ],
  };
}

async function shumaRun(rt: Runtime, wsId: string, tap: boolean, ending: Ending): Promise<void> {
  const pipeline = await rt.runPipeline(spec(wsId, tap, ending));
  const result = await pipeline.done;
  if (!result.ok) throw new Error(`pipeline failed: ${JSON.stringify(result.exits)}`);
  if (tap) {
    const crossed = (await pipeline.flows()).map((flow) => flow.bytes);
    if (crossed.some((bytes) => bytes !== BYTES)) throw new Error(`tapped flows counted ${crossed.join(', ')} bytes`);
  }
}

/**
 * A flow reader in a process of its own, in C so that it keeps up with the edge (a Node reader
 * falls 4 MiB behind within milliseconds at these rates and is dropped): reads up to 1 MiB at a
 * time, counts, prints the count at its end.
 */
const READER_SOURCE = `
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static char buf[1 << 20];
int main(int argc, char **argv) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return 1;
  long long n = 0;
  for (ssize_t got; (got = read(fd, buf, sizeof buf)) > 0;) n += got;
  printf("%lld\\n", n);
  return 0;
}
`;

function compile(dir: string, name: string, code: string): string {
  const source = path.join(dir, `${name}.c`);
  const binary = path.join(dir, name);
  writeFileSync(source, code);
  execFileSync('gcc', ['-O2', '-o', binary, source]);
  return binary;
}

/**
 * The tapped pipeline with a reader on cat1->cat2 from its first byte (head waits at a FIFO
 * until the reader is seen), timed from the gate's opening to the reader's end. The bytes the
 * reader got are kept: fewer than 2 GiB means it fell 4 MiB behind and was dropped.
 */
async function shumaWithReader(rt: Runtime, wsId: string, scratch: string, readerBinary: string, round: number, got: number[]): Promise<Cost> {
  const gate = path.join(scratch, `gate-${round}`);
  execFileSync('mkfifo', [gate]);
  const pipeline = await rt.runPipeline({
    ...spec(wsId, true, 'devnull'),
    label: `throughput-reader-${round}`,
    nodes: [{ label: 'head', exec: 'sh', argv: ['-c', `read x < '${gate}'; exec head -c 2G /dev/zero`] }, ...spec(wsId, true, 'devnull').nodes.slice(1)],
  });
  const socketPath = (await pipeline.flows()).find((flow) => flow.edge === 'cat1->cat2')!.socketPath!;
  const reader = spawn(readerBinary, [socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const readerDone = new Promise<void>((resolve) => reader.once('close', () => resolve()));
  while (!(await pipeline.flows()).some((flow) => flow.edge === 'cat1->cat2' && flow.readers === 1)) await new Promise((resolve) => setTimeout(resolve, 5));
  const holder = openSync(gate, constants.O_RDWR);
  try {
    return await measure(async () => {
      writeSync(holder, 'go\n');
      const result = await pipeline.done;
      if (!result.ok) throw new Error(`pipeline failed: ${JSON.stringify(result.exits)}`);
      await readerDone;
      got.push(Number(out.trim()));
    });
  } finally {
    closeSync(holder);
  }
}

const gibPerSec = (ms: number): number => BYTES / GIB / (ms / 1000);

/** The median of each figure over the rounds: one slow spell of a shared machine moves it least. */
function median(costs: readonly Cost[]): Cost {
  const mid = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return {
    ms: mid(costs.map((c) => c.ms)),
    cpuS: mid(costs.map((c) => c.cpuS)),
    ownS: mid(costs.map((c) => c.ownS)),
    loopS: mid(costs.map((c) => c.loopS)),
    loopWakeups: mid(costs.map((c) => c.loopWakeups)),
  };
}

/**
 * Every variant runs once per round, interleaved, so that a slow spell of the machine (other
 * work shares its cores) hits all of them; each figure is the median over the rounds. Wall
 * times vary a lot from run to run on a shared machine; the CPU time per GiB is the steadier
 * figure, and says what the throughput is bound by when the cores are few.
 */
export async function pipelineThroughputSection(rounds = Number(process.env.SHUMA_BENCH_PIPELINE_ROUNDS ?? 3)): Promise<Line[]> {
  const rowsOnly = process.env.SHUMA_BENCH_PIPELINE === 'rows';
  const rt = await createRuntime();
  const stateDir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-logs-'));
  const rtFiles = await createRuntime({ stateDir });
  const readerBinary = compile(stateDir, 'flow-reader', READER_SOURCE);
  const twin = twins(compile(stateDir, 'relay', RELAY_SOURCE));
  const withFiles = 'untapped, last cat captured in its ring and its log files';
  const variants: Array<{ what: string; tap: boolean; ending: Ending }> = [
    { what: 'untapped, last cat captured in its ring', tap: false, ending: 'captured' },
    { what: 'tapped, last cat captured in its ring', tap: true, ending: 'captured' },
    { what: "untapped, last node sh -c 'cat > /dev/null'", tap: false, ending: 'devnull' },
    { what: "tapped, last node sh -c 'cat > /dev/null'", tap: true, ending: 'devnull' },
  ];
  const withReader = "tapped, last node sh -c 'cat > /dev/null', a flow reader on cat1->cat2";
  const readerGot: number[] = [];
  const runs = new Map<string, Cost[]>();
  const keep = (key: string, cost: Cost) => runs.set(key, [...(runs.get(key) ?? []), cost]);
  try {
    const ws = await rt.createWorkspace({ label: 'throughput' });
    const wsFiles = await rtFiles.createWorkspace({ label: 'throughput-files' });
    for (let round = 1; round <= rounds; round++) {
      progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: bash`);
      keep('bash', await measure(() => bashRun(BASH)));
      progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: bash with a fourth stage`);
      keep('bash-four', await measure(() => bashRun(BASH_FOUR_STAGES)));
      for (const [key, script] of Object.entries(twin)) {
        progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: bash, twin of ${key}`);
        keep(`twin-${key}`, await measure(() => bashRun(script)));
      }
      for (const variant of variants) {
        progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: shuma ${variant.what}`);
        keep(variant.what, await measure(() => shumaRun(rt, ws.id, variant.tap, variant.ending)));
      }
      if (rowsOnly) continue;
      progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: bash, a session per stage`);
      keep('bash-setsid', await measure(() => bashRun(BASH_SETSID)));
      progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: shuma ${withFiles}`);
      keep(withFiles, await measure(() => shumaRun(rtFiles, wsFiles.id, false, 'captured')));
      progress(`pipeline throughput, 2 GiB, round ${round}/${rounds}: shuma ${withReader}`);
      keep(withReader, await shumaWithReader(rt, ws.id, stateDir, readerBinary, round, readerGot));
    }
    await ws.stop({ graceMs: 0 });
    await wsFiles.stop({ graceMs: 0 });
  } finally {
    await rt.shutdown({ graceMs: 0 });
    await rtFiles.shutdown({ graceMs: 0 });
    rmSync(stateDir, { recursive: true, force: true });
  }
  const figures = new Map([...runs].map(([key, costs]) => [key, median(costs)]));
  const rows = issueRows(runs, variants.map((variant) => variant.what) as [string, string, string, string]);
  if (rowsOnly) return [{ heading: `(j) pipeline throughput, issue 17 rows: 2 GiB through head | cat | cat, vs bash and vs a fair twin; medians of ${rounds} rounds` }, ...rows];
  const bash = figures.get('bash')!;
  const cpuPerGib = (cost: Cost) => cost.cpuS / (BYTES / GIB);
  const captured = figures.get(variants[0]!.what)!;
  const tappedVsUntapped = [
    [variants[1]!, variants[0]!],
    [variants[3]!, variants[2]!],
  ] as const;
  const reading = figures.get(withReader)!;
  const tappedDevnull = figures.get(variants[3]!.what)!;
  return [
    { heading: `(j) pipeline throughput, issue 17 rows: 2 GiB through head | cat | cat, vs bash and vs a fair twin; medians of ${rounds} rounds` },
    ...rows,
    { heading: `(j) pipeline throughput: 2 GiB through head -c 2G /dev/zero | cat | cat  vs  bash (… | cat > /dev/null); medians of ${rounds} rounds` },
    {
      what: '2 GiB, bash with each stage in a session of its own (setsid), as child_process spawns',
      unit: 'GiB/s',
      shuma: gibPerSec(figures.get('bash-setsid')!.ms),
      baseline: gibPerSec(bash.ms),
    },
    ...variants.map((variant) => ({
      what: `2 GiB pipeline, ${variant.what}`,
      unit: 'GiB/s',
      shuma: gibPerSec(figures.get(variant.what)!.ms),
      baseline: gibPerSec(bash.ms),
    })),
    {
      what: '2 GiB, untapped, last cat captured, vs bash with a fourth stage (… | cat | cat > /dev/null: the same hop)',
      unit: 'GiB/s',
      shuma: gibPerSec(captured.ms),
      baseline: gibPerSec(figures.get('bash-four')!.ms),
    },
    {
      what: '2 GiB captured with log files, vs the same without (untapped, last cat captured)',
      unit: 'GiB/s',
      shuma: gibPerSec(figures.get(withFiles)!.ms),
      baseline: gibPerSec(captured.ms),
    },
    {
      what: 'CPU time, all processes, captured with log files, vs the same without',
      unit: 'CPU s/GiB',
      shuma: cpuPerGib(figures.get(withFiles)!),
      baseline: cpuPerGib(captured),
    },
    ...variants.map((variant) => ({
      what: `CPU time, all processes, ${variant.what}`,
      unit: 'CPU s/GiB',
      shuma: cpuPerGib(figures.get(variant.what)!),
      baseline: cpuPerGib(bash),
    })),
    {
      what: 'CPU time, all processes, untapped, last cat captured, vs bash with a fourth stage',
      unit: 'CPU s/GiB',
      shuma: cpuPerGib(captured),
      baseline: cpuPerGib(figures.get('bash-four')!),
    },
    ...variants.map((variant) => ({
      what: `CPU time of the runtime alone (its share of the line above), ${variant.what}`,
      unit: 'CPU s/GiB',
      shuma: figures.get(variant.what)!.ownS / (BYTES / GIB),
      baseline: cpuPerGib(figures.get(variant.what)!),
    })),
    {
      what: `2 GiB pipeline, ${withReader}`,
      unit: 'GiB/s',
      shuma: gibPerSec(reading.ms),
      baseline: gibPerSec(bash.ms),
    },
    {
      what: `2 GiB, ${withReader}, vs the same without the reader`,
      unit: 'GiB/s',
      shuma: gibPerSec(reading.ms),
      baseline: gibPerSec(tappedDevnull.ms),
    },
    {
      what: `bytes the flow reader got (fewest over the rounds), vs what crossed`,
      unit: 'GiB',
      shuma: Math.min(...readerGot) / GIB,
      baseline: BYTES / GIB,
    },
    {
      what: `CPU time of the runtime alone, ${withReader}, vs the same without the reader`,
      unit: 'CPU s/GiB',
      shuma: reading.ownS / (BYTES / GIB),
      baseline: tappedDevnull.ownS / (BYTES / GIB),
    },
    {
      what: `CPU time of the runtime's loop thread, ${withReader}, vs the same without the reader`,
      unit: 'CPU s/GiB',
      shuma: reading.loopS / (BYTES / GIB),
      baseline: tappedDevnull.loopS / (BYTES / GIB),
    },
    {
      what: `wake-ups of the runtime's loop thread, ${withReader}, vs the same without the reader`,
      unit: 'per GiB',
      shuma: reading.loopWakeups / (BYTES / GIB),
      baseline: tappedDevnull.loopWakeups / (BYTES / GIB),
    },
    // What tapping costs the loop's thread (every host actor runs there): the untapped pipeline
    // with the same ending is the baseline (its bytes never reach the runtime but for the capture).
    ...tappedVsUntapped.flatMap(([tapped, untapped]) => [
      {
        what: `CPU time of the runtime's loop thread, ${tapped.what}, vs untapped`,
        unit: 'CPU s/GiB',
        shuma: figures.get(tapped.what)!.loopS / (BYTES / GIB),
        baseline: figures.get(untapped.what)!.loopS / (BYTES / GIB),
      },
      {
        what: `wake-ups of the runtime's loop thread, ${tapped.what}, vs untapped`,
        unit: 'per GiB',
        shuma: figures.get(tapped.what)!.loopWakeups / (BYTES / GIB),
        baseline: figures.get(untapped.what)!.loopWakeups / (BYTES / GIB),
      },
    ]),
  ];
}

/** A figure's per-round ratios to its baseline's (same round), lowest and highest: the spread. */
function spread(costs: readonly Cost[], baseline: readonly Cost[], of: (cost: Cost) => number): string {
  const ratios = costs.map((cost, i) => of(cost) / of(baseline[i]!));
  return `rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×`;
}

/**
 * The issue 17 rows, each against the issue's baseline (bash, `… | cat > /dev/null`) and its
 * fair twin (bash with a splice relay where the runtime has a hop). `names`: the variants'
 * keys, in the order untapped captured, tapped captured, untapped devnull, tapped devnull.
 */
function issueRows(runs: Map<string, Cost[]>, names: [string, string, string, string]): Line[] {
  const [captured, tappedCaptured, , tappedDevnull] = names;
  const speed = (cost: Cost) => gibPerSec(cost.ms);
  const cpu = (cost: Cost) => cost.cpuS / (BYTES / GIB);
  const row = (what: string, unit: string, shumaKey: string, baseKey: string, of: (cost: Cost) => number): Line => {
    const shuma = runs.get(shumaKey)!;
    const base = runs.get(baseKey)!;
    return { what: `${what} (${spread(shuma, base, of)})`, unit, shuma: of(median(shuma)), baseline: of(median(base)) };
  };
  return [
    row('captured (last cat in its ring), vs bash … | cat > /dev/null [goal >= 0.9]', 'GiB/s', captured, 'bash', speed),
    row('captured, vs its twin: bash … | cat | relay > /dev/null (a reader splicing the last pipe away)', 'GiB/s', captured, 'twin-captured', speed),
    row('captured, vs bash … | cat | cat > /dev/null (a cat reading the last pipe)', 'GiB/s', captured, 'bash-four', speed),
    row("tapped, last node sh -c 'cat > /dev/null', vs bash [goal >= 0.8]", 'GiB/s', tappedDevnull, 'bash', speed),
    row('tapped, last node to /dev/null, vs its twin: bash head | relay | cat | relay | cat > /dev/null', 'GiB/s', tappedDevnull, 'twin-tappedDevnull', speed),
    row('tapped, last cat captured, vs bash [goal >= 0.8]', 'GiB/s', tappedCaptured, 'bash', speed),
    row('tapped, last cat captured, vs its twin: bash head | relay | cat | relay | cat | relay > /dev/null', 'GiB/s', tappedCaptured, 'twin-tappedCaptured', speed),
    row('CPU per GiB, all processes, tapped, last node to /dev/null, vs bash [goal <= 1.2]', 'CPU s/GiB', tappedDevnull, 'bash', cpu),
    row('CPU per GiB, tapped, last node to /dev/null, vs its twin', 'CPU s/GiB', tappedDevnull, 'twin-tappedDevnull', cpu),
    row('CPU per GiB, tapped, last cat captured, vs bash [goal <= 1.2]', 'CPU s/GiB', tappedCaptured, 'bash', cpu),
    row('CPU per GiB, tapped, last cat captured, vs its twin', 'CPU s/GiB', tappedCaptured, 'twin-tappedCaptured', cpu),
    row('CPU per GiB, captured (untapped), vs bash', 'CPU s/GiB', captured, 'bash', cpu),
    row('CPU per GiB, captured (untapped), vs its twin', 'CPU s/GiB', captured, 'twin-captured', cpu),
  ];
}
