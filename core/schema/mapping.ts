/**
 * Elasticsearch mappings derived from the event schema. Explicit types everywhere and
 * `dynamic: strict` at the root, so a field outside the schema is a mapping rejection
 * (dead-lettered with its reason), never a silently guessed mapping.
 */
import { EventSchema } from './event.ts';
import { type FieldAnnotation, isLeaf } from './fields.ts';

export type EsMappingProperty = Record<string, unknown>;

function leafMapping(a: FieldAnnotation): EsMappingProperty {
  const m: EsMappingProperty = { type: a.es };
  if (a.es === 'keyword') {
    if (a.indexed === false) {
      m.index = false;
      m.doc_values = false;
    } else if (a.ignoreAbove) {
      m.ignore_above = a.ignoreAbove;
    }
  }
  if (a.es === 'date') m.format = 'strict_date_optional_time||epoch_millis';
  if (a.es === 'flattened') m.ignore_above = 1024;
  return m;
}

export function mappingFor(schema: unknown): EsMappingProperty {
  if (isLeaf(schema)) return leafMapping(schema as unknown as FieldAnnotation);
  const properties = (schema as { properties?: Record<string, unknown> }).properties ?? {};
  const out: Record<string, EsMappingProperty> = {};
  for (const [key, child] of Object.entries(properties)) out[key] = mappingFor(child);
  return { properties: out };
}

/** The `mappings` section of the events index template. */
export function eventMappings(): Record<string, unknown> {
  const root = mappingFor(EventSchema) as { properties: Record<string, unknown> };
  return { dynamic: 'strict', date_detection: false, properties: root.properties };
}
