// What the commands of a runtime write, as whole lines named by who wrote them (`web/api`,
// `ws/pipeline/node`), as `docker compose up` shows its services' output. Read from the runs' log
// rings on each poll, so the capture path is not touched; a ring that wrapped between two polls
// is said ("[… bytes not shown]"), never silently cut.
import { StringDecoder } from 'node:string_decoder';
import type { RunView, RuntimeView } from '../host/runtime-view.js';

export interface OutputLine {
  name: string;
  stream: 'stdout' | 'stderr';
  text: string;
}

interface Reading {
  seen: number;
  partial: string;
  decoder: StringDecoder;
}

/** A line longer than this is shown in pieces: a command that never writes a newline still shows. */
const MAX_LINE = 4096;

export class OutputLines {
  private readonly readings = new Map<string, { name: string; streams: Record<'stdout' | 'stderr', Reading>; done: boolean }>();

  constructor(
    private readonly core: RuntimeView,
    private readonly emit: (line: OutputLine) => void,
  ) {}

  private nameOf(run: RunView): string {
    const ws = this.core.registry.get(run.wsId)?.label ?? run.wsId;
    if (run.pipelineId === undefined) return `${ws}/${run.label}`;
    return `${ws}/${this.core.pipelines.get(run.pipelineId)?.label ?? run.pipelineId}/${run.label}`;
  }

  /** Emits the lines written since the last poll by the runs of these workspaces. */
  poll(wsIds: Iterable<string>): void {
    for (const wsId of wsIds) {
      for (const run of this.core.table.ofWorkspace(wsId)) {
        let reading = this.readings.get(run.id);
        if (!reading) {
          const fresh = (): Reading => ({ seen: 0, partial: '', decoder: new StringDecoder('utf8') });
          reading = { name: this.nameOf(run), streams: { stdout: fresh(), stderr: fresh() }, done: false };
          this.readings.set(run.id, reading);
        }
        if (reading.done) continue;
        const ended = !run.alive && run.outputEnded;
        for (const stream of ['stdout', 'stderr'] as const) this.read(reading.name, stream, run[stream], reading.streams[stream], ended);
        reading.done = ended;
      }
    }
  }

  private read(name: string, stream: 'stdout' | 'stderr', ring: RunView['stdout'], r: Reading, ended: boolean): void {
    const fresh = ring.total - r.seen;
    if (fresh > 0) {
      const kept = Math.min(fresh, ring.keptBytes);
      if (kept < fresh) {
        if (r.partial) this.emit({ name, stream, text: r.partial });
        r.partial = '';
        this.emit({ name, stream, text: `[${fresh - kept} bytes not shown: written faster than they were read]` });
      }
      r.seen = ring.total;
      r.partial += r.decoder.write(ring.tail(kept));
      const lines = r.partial.split('\n');
      r.partial = lines.pop()!;
      for (const text of lines) this.emit({ name, stream, text });
      while (r.partial.length > MAX_LINE) {
        this.emit({ name, stream, text: r.partial.slice(0, MAX_LINE) });
        r.partial = r.partial.slice(MAX_LINE);
      }
    }
    if (ended) {
      r.partial += r.decoder.end();
      if (r.partial) this.emit({ name, stream, text: r.partial });
      r.partial = '';
    }
  }
}
