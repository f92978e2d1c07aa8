// What the tapped-pipeline tests share: real FIFOs as gates, a flow socket reader, polling
// for figures that have no event of their own.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach } from 'node:test';
import type { FlowInfo, Pipeline, PipelineSpec, Runtime, Workspace } from '../src/index.js';
import { startRuntime } from './helpers.js';

export const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-flows-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const opened: Runtime[] = [];
/** Each test's runtime is shut down as the test ends (startRuntime's hook is the safety net). */
afterEach(async () => {
  await Promise.all(opened.splice(0).map((rt) => rt.shutdown({ graceMs: 0 })));
});

/** A runtime of the test's own and one workspace in it, with its flow sockets in `flowDir`. */
export async function setup(label: string, flowDir?: string): Promise<{ rt: Runtime; ws: Workspace }> {
  const rt = await startRuntime();
  opened.push(rt);
  const ws = await rt.createWorkspace({ label, ...(flowDir ? { flowDir } : {}) });
  return { rt, ws };
}

/** `yes | cat | cat > /dev/null`, tapped: bytes flow on both edges until it is stopped. */
export function endlessChain(label: string, workspace: string): PipelineSpec {
  return {
    label,
    workspace,
    tap: true,
    nodes: [
      { label: 'gen', exec: 'yes' },
      { label: 'pass', exec: 'cat' },
      { label: 'sink', exec: 'sh', argv: ['-c', 'cat > /dev/null'] },
    ],
    edges: [
      { from: 'gen', to: 'pass' },
      { from: 'pass', to: 'sink' },
    ],
  };
}

export function bash(script: string): Buffer {
  return execFileSync('bash', ['-c', script], { maxBuffer: 64 * 1024 * 1024 });
}

let fifoCount = 0;
/** A FIFO a producer waits on (`read x < fifo`) before it writes anything. */
export function makeGate(): { path: string; open: () => () => void } {
  const fifo = path.join(scratch, `gate-${fifoCount++}`);
  execFileSync('mkfifo', [fifo]);
  return {
    path: fifo,
    // O_RDWR never blocks on a FIFO; the line stays in the pipe until the producer reads it,
    // as long as this end is open: the returned function closes it.
    open: () => {
      const fd = openSync(fifo, constants.O_RDWR);
      writeSync(fd, 'go\n');
      return () => closeSync(fd);
    },
  };
}

/** `sh -c 'read x < gate; <script>'`: writes nothing until the gate opens. */
export function gated(label: string, gate: string, script: string) {
  return { label, exec: 'sh', argv: ['-c', `read x < '${gate}'; ${script}`] };
}

/** Polls a condition that has no event of its own (a count in flows(), a process state). */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; !(await condition()); delay = Math.min(delay * 2, 50)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

export async function flowOf(pipeline: Pipeline, edge: string): Promise<FlowInfo> {
  const flow = (await pipeline.flows()).find((f) => f.edge === edge);
  assert.ok(flow, `no flow ${edge} in ${JSON.stringify(await pipeline.flows())}`);
  return flow;
}

/** Connects to a flow socket and collects what arrives, until the runtime ends the connection. */
export function attach(socketPath: string): Promise<{ socket: net.Socket; received: Promise<Buffer> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    const received = new Promise<Buffer>((done, fail) => {
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', fail);
      socket.on('close', () => done(Buffer.concat(chunks)));
    });
    socket.once('connect', () => resolve({ socket, received }));
    socket.once('error', reject);
  });
}

export async function logsOf(ws: Workspace, pipeline: Pipeline, label: string): Promise<string> {
  const node = pipeline.nodes.find((n) => n.label === label);
  assert.ok(node, `no node ${label}`);
  return (await ws.logs(node.commandId)).toString();
}

