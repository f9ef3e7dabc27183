/**
 * Derives the field catalogue from the event schema (event.ts) and writes it to
 * catalogue.json, which the catalogue loads: the rule language and everything else that looks
 * fields up then start without TypeBox (~370 modules, most of `gatewatch rules validate`'s
 * start-up). `npm run schema:catalogue` rewrites the file after event.ts changes; a unit test
 * fails while the two disagree.
 */
import { writeFileSync } from 'node:fs';
import type { FieldInfo } from './catalogue.ts';
import { EventSchema } from './event.ts';
import { type FieldAnnotation, isLeaf } from './fields.ts';

export const CATALOGUE_FILE = new URL('./catalogue.json', import.meta.url);

function walk(schema: unknown, prefix: string, out: FieldInfo[]): void {
  if (isLeaf(schema)) {
    const a = schema as unknown as FieldAnnotation;
    out.push({
      name: prefix,
      type: a.es,
      array: a.array ?? false,
      indexed: a.indexed ?? true,
      description: a.description,
    });
    return;
  }
  const properties = (schema as { properties?: Record<string, unknown> }).properties;
  if (!properties) return;
  for (const [key, child] of Object.entries(properties)) {
    walk(child, prefix ? `${prefix}.${key}` : key, out);
  }
}

/** Every leaf field of the event schema, in schema order. */
export function deriveCatalogue(): FieldInfo[] {
  const out: FieldInfo[] = [];
  walk(EventSchema, '', out);
  return out;
}

/** catalogue.json's text for the current event schema. */
export function catalogueJson(): string {
  return `${JSON.stringify(deriveCatalogue(), null, 2)}\n`;
}

if (import.meta.main) {
  writeFileSync(CATALOGUE_FILE, catalogueJson());
  console.log(`wrote ${CATALOGUE_FILE.pathname} (${deriveCatalogue().length} fields)`);
}
