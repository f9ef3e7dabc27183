/**
 * The console's API types, generated from the OpenAPI document the API serves: build the app
 * (over an in-memory embedded store — the routes and schemas are the same in both modes),
 * read its document and turn it into TypeScript with openapi-typescript. Run by
 * `npm run build:console`; the output is not committed, so it cannot go stale.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import openapiTS from 'openapi-typescript';
import { loadConfig } from '../../core/config/load.ts';
import { buildEmbeddedApp } from '../../embedded/app.ts';
import { EmbeddedStore } from '../../embedded/store.ts';

const out = join(import.meta.dirname, '..', 'src', 'api');
const store = new EmbeddedStore(':memory:');
try {
  const app = await buildEmbeddedApp({ config: loadConfig({ env: {} }), store, publicDocs: true });
  await app.ready();
  const document = app.swagger() as Record<string, unknown>;
  await app.close();
  const types = await openapiTS(document as never, { exportType: false, immutableTypes: false });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'openapi.json'), `${JSON.stringify(document, null, 2)}\n`);
  writeFileSync(
    join(out, 'schema.d.ts'),
    `// Generated from the API's OpenAPI document by console/scripts/generate-types.ts.\n${types}`,
  );
} finally {
  store.close();
}
