import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { createMachine } from 'xstate';
import { describeMachine, type Chart } from '../src/machines/chart.js';
import { toMermaid } from '../src/machines/chart-mermaid.js';
import { eventColumns } from '../src/machines/chart-queries.js';
import { toStateTable } from '../src/machines/chart-table.js';
import { commandMachine } from '../src/machines/command-machine.js';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import { checkDiagrams, generateDiagrams, MACHINES } from '../scripts/diagram-files.js';
import { chartToSvg } from '../scripts/svg-chart.js';

/** The project root: this file runs as dist/test/diagrams.test.js. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const command = describeMachine(commandMachine);
const workspace = describeMachine(workspaceMachine);

/** The rows of a generated table, as arrays of cells (header and rule left out). */
function tableRows(chart: Chart): string[][] {
  const lines = toStateTable(chart).trim().split('\n').slice(2);
  return lines.map((line) => line.slice(2, -2).split(' | '));
}

function row(chart: Chart, path: string): Map<string, string> {
  const found = tableRows(chart).find((cells) => cells[0] === `\`${path}\``);
  assert.ok(found, `no row for ${path}`);
  return new Map(eventColumns(chart).map((event, i) => [event, found[i + 2] ?? '']));
}

describe('committed diagrams', () => {
  test('docs/diagrams matches the machines (run `npm run diagrams` after changing one)', () => {
    const drift = checkDiagrams(ROOT);
    assert.deepEqual(
      drift.map((d) => `${d.file}: ${d.problem}`),
      [],
      'docs/diagrams is out of date: run `npm run diagrams` and commit the result',
    );
  });

  test('a changed machine is reported, file by file', () => {
    // The command machine, except that the backoff timer now gives up instead of relaunching.
    const config = commandMachine.config;
    const changed = createMachine({
      id: config.id,
      initial: config.initial,
      on: config.on,
      states: { ...config.states, backoff: { after: { backoff: 'gaveUp' }, on: { STOP: 'stopped' } } },
    } as Parameters<typeof createMachine>[0]);
    const entries = MACHINES.map((m) => (m.name === 'command' ? { ...m, machine: changed } : m));
    const drift = checkDiagrams(ROOT, generateDiagrams(entries));
    assert.deepEqual(drift, [
      { file: 'docs/diagrams/command.mmd', problem: 'differs' },
      { file: 'docs/diagrams/command.svg', problem: 'differs' },
      { file: 'docs/diagrams/command.md', problem: 'differs' },
    ]);
  });

  test('generation is deterministic', () => {
    assert.deepEqual(generateDiagrams(), generateDiagrams());
  });
});

describe('command chart', () => {
  test('shows the delayed relaunch under the name of its delay', () => {
    const mermaid = toMermaid(command);
    assert.match(mermaid, /^ {2}backoff --> restarting : after\(backoff\) \[not\(awaitingVerdict\)\] \/ countRestart$/m);
    assert.ok(!mermaid.includes('xstate.after'), 'the internal event name leaks into the chart');
    assert.equal(row(command, 'backoff').get('after(backoff)'), '[not(awaitingVerdict)] → restarting / countRestart');
  });

  test('shows composite guards and the order in which XState tries them', () => {
    assert.equal(
      row(command, 'running').get('EXITED'),
      '[and(isCurrentRun, endedByGroup)] → waiting / recordExit, report(down)<br>' +
        '[and(isCurrentRun, relaunches, mayRestart, failed)] → backoff / recordExit, scheduleBackoff, logBackoff, awaitVerdict, report(failing)<br>' +
        '[and(isCurrentRun, relaunches, mayRestart)] → backoff / recordExit, scheduleBackoff, logBackoff, report(down)<br>' +
        '[and(isCurrentRun, failed, supervised)] → gaveUp / recordExit<br>' +
        '[isCurrentRun] → exited / recordExit',
    );
    assert.equal(row(command, 'restarting').get('SPAWN_FAILED')?.split('<br>')[0], '[mayRestart] → backoff / recordExit, scheduleBackoff, logBackoff, awaitVerdict, report(failing)');
  });

  test('the machine-wide FAULT handler applies in every live state, and final states ignore everything', () => {
    for (const state of command.states) {
      const cells = row(command, state.path);
      if (state.type === 'final') assert.ok([...cells.values()].every((c) => c === '—'), `${state.path} handles an event`);
      else assert.equal(cells.get('FAULT'), 'stay / throwFault (machine-wide)');
    }
  });

  test('a stop during backoff goes straight to stopped', () => {
    assert.equal(row(command, 'backoff').get('STOP'), '→ stopped / clearBackoff, noteStop');
  });
});

describe('workspace chart', () => {
  test('has the eventless transitions of deadlines already passed: TTL in running, grace in terminating', () => {
    const always = workspace.transitions.filter((t) => t.kind === 'always');
    assert.deepEqual(
      always.map((t) => [t.source, t.targets, t.guard]),
      [
        ['running', ['reaping'], 'ttlOver'],
        ['reaping.terminating', ['reaping.killing'], 'graceOver'],
      ],
    );
    assert.match(toMermaid(workspace), /^ {4}reaping_terminating --> reaping_killing : always \[graceOver\]$/m);
    assert.equal(row(workspace, 'reaping.terminating').get('always'), '[graceOver] → reaping.killing');
  });

  test('nests terminating and killing inside reaping', () => {
    const mermaid = toMermaid(workspace);
    const block = mermaid.slice(mermaid.indexOf('state "reaping'), mermaid.indexOf('\n  }\n'));
    assert.match(block, /\[\*\] --> reaping_terminating/);
    assert.match(block, /reaping_killing : entry \/ killGroups/);
  });

  test('children inherit the handlers of reaping; only terminating takes a shorter grace', () => {
    const killing = row(workspace, 'reaping.killing');
    assert.equal(killing.get('GROUPS_EMPTY'), '→ stopped / noteStopped (from reaping)');
    assert.equal(killing.get('STOP'), '—');
    assert.match(row(workspace, 'reaping.terminating').get('STOP') ?? '', /^\[shortensGrace\] → reaping\.terminating \(reenter\) \/ noteStop$/);
    assert.equal(row(workspace, 'running').get('after(ttl)'), '[hasTtl] → reaping / noteTtlExpiry');
  });
});

describe('tables and SVG', () => {
  for (const [name, chart, states] of [
    ['command', command, ['waiting', 'starting', 'up', 'running', 'ending', 'lost', 'backoff', 'restarting', 'stopping', 'exited', 'gaveUp', 'failed', 'stopped', 'unmet']],
    ['workspace', workspace, ['created', 'running', 'reaping', 'reaping.terminating', 'reaping.killing', 'stopped']],
  ] as const) {
    test(`the ${name} table has one row per state and one cell per event`, () => {
      const rows = tableRows(chart);
      assert.deepEqual(
        rows.map((cells) => cells[0]),
        states.map((s) => `\`${s}\``),
      );
      for (const cells of rows) assert.equal(cells.length, eventColumns(chart).length + 2);
    });

    test(`the ${name} SVG names every state and every trigger`, () => {
      const svg = chartToSvg(chart, { title: name, subtitle: '' });
      assert.match(svg, /^<svg [^>]*viewBox="0 0 [\d.]+ [\d.]+"/);
      assert.ok(!svg.includes('NaN'), 'a coordinate is NaN');
      for (const state of chart.states) assert.ok(svg.includes(`>${state.key}</text>`), `${state.key} is missing`);
      for (const event of eventColumns(chart)) assert.ok(svg.includes(event), `${event} is missing`);
    });
  }
});
