// The JSON Schema of the spec file, built from the field lists the validators check against:
// a field added to a validator without a schema entry here makes specSchema() throw (and the
// test that compares schema/shuma-spec.schema.json with it fail).
import { EDGE_FIELDS, PIPELINE_STRATEGIES, PIPELINE_SUPERVISION_FIELDS } from '../protocol/pipeline-spec.js';
import { MAX_TIMER_MS } from '../protocol/specs.js';
import { COMMAND_FIELDS, LIMIT_FIELDS, QUOTA_ACTIONS, RESTART_FIELDS } from '../protocol/validate-spec.js';
import {
  DEPENDENCY_CONDITIONS,
  DEPENDENCY_FIELDS,
  GROUP_NAME,
  INTENSITY_FIELDS,
  PROBE_FIELDS,
  PROBE_KINDS,
  STRATEGIES,
  SUPERVISION_FIELDS,
} from '../protocol/supervision-spec.js';
import { FILE_PIPELINE_FIELDS, FILE_WORKSPACE_FIELDS, TOP_FIELDS } from './spec-file.js';

type Schema = { [key: string]: unknown };

const text: Schema = { type: 'string', minLength: 1 };
const duration: Schema = { type: 'number', minimum: 0, maximum: MAX_TIMER_MS };
const count: Schema = { type: 'integer', minimum: 0 };
const env: Schema = { type: 'object', additionalProperties: { type: 'string' }, propertyNames: { minLength: 1, pattern: '^[^=]*$' } };
const ref = (name: string): Schema => ({ $ref: `#/$defs/${name}` });

function object(name: string, fields: readonly string[], types: Record<string, Schema>, required: string[] = []): Schema {
  const properties: Record<string, Schema> = {};
  for (const field of fields) {
    const type = types[field];
    if (!type) throw new Error(`spec-schema: no schema for ${name}.${field}: add it to spec-schema.ts`);
    properties[field] = type;
  }
  const extra = Object.keys(types).filter((f) => !fields.includes(f));
  if (extra.length) throw new Error(`spec-schema: ${name} has no field ${extra.join(', ')} any more`);
  return { type: 'object', additionalProperties: false, ...(required.length ? { required } : {}), properties };
}

const slurmName = { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' };

export function specSchema(): Schema {
  const command = object('command', COMMAND_FIELDS, {
    exec: text,
    argv: { type: 'array', items: { type: 'string' } },
    env,
    cwd: text,
    label: text,
    restart: ref('restart'),
    ready: ref('ready'),
    dependsOn: { type: 'array', items: ref('dependency') },
    node: slurmName,
    timestamps: { type: 'boolean' },
    group: text,
  }, ['exec']);
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'shuma spec file (shuma up <file>)',
    ...object('file', TOP_FIELDS, { workspaces: { type: 'array', minItems: 1, items: ref('workspace') } }, ['workspaces']),
    $defs: {
      workspace: object('workspace', FILE_WORKSPACE_FIELDS, {
        label: text,
        ttlMs: { type: 'number', exclusiveMinimum: 0, maximum: MAX_TIMER_MS },
        limits: object('limits', LIMIT_FIELDS, Object.fromEntries(LIMIT_FIELDS.map((f) => [f, { type: 'integer', minimum: 1 }]))),
        quota: object('quota', ['memory', 'nproc'], { memory: ref('quotaAction'), nproc: ref('quotaAction') }),
        cgroup: { oneOf: [{ type: 'boolean' }, text] },
        cwd: text,
        env,
        flowDir: text,
        supervision: ref('supervision'),
        groups: { type: 'object', propertyNames: { pattern: GROUP_NAME.source }, additionalProperties: ref('supervision') },
        placement: {
          oneOf: [
            { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: { const: 'local' } } },
            {
              type: 'object',
              additionalProperties: false,
              required: ['kind'],
              properties: {
                kind: { const: 'slurm' },
                nodes: { type: 'integer', minimum: 1 },
                nodelist: { type: 'array', minItems: 1, items: slurmName },
                partition: slurmName,
                account: slurmName,
              },
            },
          ],
        },
        commands: { type: 'array', items: ref('command') },
        pipelines: { type: 'array', items: ref('pipeline') },
      }, ['label']),
      command,
      restart: object('restart', RESTART_FIELDS, {
        onFailure: { type: 'boolean' },
        always: { type: 'boolean' },
        backoffMs: duration,
        maxBackoffMs: duration,
        maxRestarts: count,
        resetAfterMs: duration,
      }, ['onFailure']),
      quotaAction: { enum: [...QUOTA_ACTIONS] },
      ready: {
        ...object('ready', PROBE_FIELDS, {
          exec: { type: 'array', minItems: 1, items: { type: 'string' } },
          tcp: { type: 'integer', minimum: 1, maximum: 65535 },
          http: { type: 'string', pattern: '^https?://' },
          line: text,
          notify: { const: true },
          intervalMs: { type: 'number', exclusiveMinimum: 0, maximum: MAX_TIMER_MS },
          timeoutMs: { type: 'number', exclusiveMinimum: 0, maximum: MAX_TIMER_MS },
          failureThreshold: { type: 'integer', minimum: 1 },
          startTimeoutMs: duration,
        }),
        // Exactly one way to tell readiness.
        oneOf: PROBE_KINDS.map((kind) => ({ required: [kind] })),
      },
      dependency: object('dependency', DEPENDENCY_FIELDS, { label: text, condition: { enum: [...DEPENDENCY_CONDITIONS] } }, ['label']),
      supervision: object('supervision', SUPERVISION_FIELDS, {
        strategy: { enum: [...STRATEGIES] },
        intensity: object('intensity', INTENSITY_FIELDS, { maxRestarts: count, withinMs: { type: 'number', exclusiveMinimum: 0, maximum: MAX_TIMER_MS } }, ['maxRestarts', 'withinMs']),
        escalate: { type: 'boolean' },
      }, ['strategy']),
      pipeline: object('pipeline', FILE_PIPELINE_FIELDS, {
        label: text,
        nodes: { type: 'array', minItems: 1, items: { allOf: [ref('command'), { required: ['label'] }] } },
        edges: { type: 'array', items: ref('edge') },
        tap: { type: 'boolean' },
        discern: { enum: ['any', 'last'] },
        restart: ref('restart'),
        supervision: object('pipelineSupervision', PIPELINE_SUPERVISION_FIELDS, { strategy: { enum: [...PIPELINE_STRATEGIES] } }, ['strategy']),
      }, ['label', 'nodes', 'edges']),
      edge: object('edge', EDGE_FIELDS, { from: text, to: text, stream: { enum: ['stdout', 'stderr'] } }, ['from', 'to']),
    },
  };
}

export function specSchemaText(): string {
  return `${JSON.stringify(specSchema(), null, 2)}\n`;
}
