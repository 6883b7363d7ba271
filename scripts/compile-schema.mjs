// Compiles schemas/multitenant-dicom.schema.json into standalone validation code
// (ajv's standalone mode), so that the plugin does not compile the schema at startup.
// Writes build/generated/configuration-validator.mjs and its type declaration.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = JSON.parse(readFileSync(join(root, 'schemas', 'multitenant-dicom.schema.json'), 'utf8'));

// allErrors: src/configuration.ts reports the first error in its own order; verbose:
// errors carry the bad value and their schema node, whose "x-expected" words the message.
const ajv = new Ajv({ allErrors: true, verbose: true, useDefaults: true, code: { source: true, esm: true } });
ajv.addKeyword({ keyword: 'x-expected', metaSchema: { type: 'string' } });
const code = standaloneCode.default(ajv, ajv.compile(schema));

const outputDirectory = join(root, 'build', 'generated');
mkdirSync(outputDirectory, { recursive: true });
writeFileSync(join(outputDirectory, 'configuration-validator.mjs'), code);
writeFileSync(
  join(outputDirectory, 'configuration-validator.d.mts'),
  "import type { ValidateFunction } from 'ajv';\ndeclare const validate: ValidateFunction;\nexport default validate;\n",
);
