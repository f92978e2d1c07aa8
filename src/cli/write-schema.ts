// `npm run schema`: writes schema/shuma-spec.schema.json from the validators' field lists.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { specSchemaText } from './spec-schema.js';

export const SCHEMA_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../schema/shuma-spec.schema.json');

mkdirSync(path.dirname(SCHEMA_PATH), { recursive: true });
writeFileSync(SCHEMA_PATH, specSchemaText());
console.log(`wrote ${path.relative(process.cwd(), SCHEMA_PATH)}`);
