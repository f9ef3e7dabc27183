/**
 * Field builders for the event schema.
 *
 * Every leaf of the event schema is a TypeBox schema carrying an `es` annotation: the
 * Elasticsearch field type it maps to. One definition therefore yields the TypeScript
 * type (TypeBox `Static`), a JSON Schema for validation, the Elasticsearch mapping and the
 * flat field catalogue the rule language checks field names and types against.
 */
import Type, { type TSchema } from 'typebox';

/** Elasticsearch field types Gatewatch uses. Anything else is deliberately absent. */
export type EsFieldType =
  | 'keyword'
  | 'ip'
  | 'date'
  | 'long'
  | 'integer'
  | 'float'
  | 'double'
  | 'boolean'
  | 'geo_point'
  | 'flattened'
  | 'match_only_text';

export interface FieldAnnotation {
  es: EsFieldType;
  /** Whether the value is a list (ECS allows arrays on any field; we declare the intent). */
  array?: boolean;
  /** `index: false`: stored as evidence, not searchable (e.g. event.original). */
  indexed?: boolean;
  /** keyword `ignore_above`. */
  ignoreAbove?: number;
  description: string;
}

type Annotated<T extends TSchema> = T & { es: EsFieldType };

function annotate<T extends TSchema>(schema: T, annotation: FieldAnnotation): Annotated<T> {
  return Object.assign(schema, annotation) as Annotated<T>;
}

export const keyword = (description: string, opts: Partial<FieldAnnotation> = {}) =>
  annotate(Type.String(), { es: 'keyword', ignoreAbove: 1024, description, ...opts });

export const keywordList = (description: string) =>
  annotate(Type.Array(Type.String()), { es: 'keyword', array: true, ignoreAbove: 1024, description });

export const text = (description: string) => annotate(Type.String(), { es: 'match_only_text', description });

export const ip = (description: string) => annotate(Type.String(), { es: 'ip', description });

/** ISO-8601 timestamp with millisecond precision, always UTC ("2026-11-23T10:00:00.000Z"). */
export const date = (description: string) => annotate(Type.String(), { es: 'date', description });

export const long = (description: string) => annotate(Type.Integer(), { es: 'long', description });

export const integer = (description: string) => annotate(Type.Integer(), { es: 'integer', description });

export const double = (description: string) => annotate(Type.Number(), { es: 'double', description });

export const float = (description: string) => annotate(Type.Number(), { es: 'float', description });

export const boolean = (description: string) => annotate(Type.Boolean(), { es: 'boolean', description });

export const geoPoint = (description: string) =>
  annotate(Type.Object({ lat: Type.Number(), lon: Type.Number() }), { es: 'geo_point', description });

/** A controlled namespace for fields no format maps: keys and values kept, never new mappings. */
export const flattened = (description: string) =>
  annotate(Type.Record(Type.String(), Type.Unknown()), { es: 'flattened', description });

/** An object grouping whose every property is optional, as ECS objects are. */
export function group<P extends Record<string, TSchema>>(properties: P) {
  const optional = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, Type.Optional(v)])) as {
    [K in keyof P]: ReturnType<typeof Type.Optional<P[K]>>;
  };
  return Type.Object(optional);
}

export function isLeaf(schema: unknown): schema is TSchema & FieldAnnotation {
  return typeof schema === 'object' && schema !== null && typeof (schema as FieldAnnotation).es === 'string';
}
