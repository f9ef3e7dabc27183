/** Schemas shared by the routes (TypeBox: one definition for validation, types and OpenAPI). */
import Type, { type TSchema } from 'typebox';
import { PROBLEM_CONTENT_TYPE, ProblemSchema } from './problem.ts';

export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 timestamp.' });

export const Cursor = Type.String({
  pattern: '^[A-Za-z0-9_-]{1,2048}$',
  description: 'Opaque cursor from the previous page (`next_cursor`).',
});

export const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'Cursor of the next page; null on the last page.',
});

export const IdParams = Type.Object(
  { id: Type.String({ pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,255}$', description: 'Identifier.' }) },
  { additionalProperties: false },
);

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid request (problem details list the failing fields).',
  401: 'Missing or invalid API key.',
  403: "The key's role may not use this endpoint.",
  404: 'Not found.',
  409: 'Conflict with the current state.',
  413: 'Request body too large.',
  415: 'Unsupported content type.',
  422: 'Rule text does not parse or check (errors carry line and column), or its check or preview exceeded its budget.',
  429: 'Rate limit exceeded for this key.',
  500: 'Server error (no internals disclosed).',
  503: 'Temporarily unavailable (Redis or Elasticsearch does not answer); retry after Retry-After seconds.',
};

export function problemResponse(status: number) {
  return {
    description: ERROR_DESCRIPTIONS[status] ?? 'Error.',
    content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
  };
}

export function json(schema: TSchema, description: string) {
  return { description, content: { 'application/json': { schema } } };
}

/** Error responses every authenticated route can give. */
export const COMMON_ERRORS = [400, 401, 403, 404, 413, 415, 429, 500, 503] as const;
export const PUBLIC_ERRORS = [400, 404, 500] as const;

/**
 * The same schema with unions of plain types written as type arrays (`{type: ['string',
 * 'null']}`) and unions of string constants as enums. Equivalent for validation and in
 * OpenAPI 3.1, and much cheaper for the response serializer (fast-json-stringify validates
 * every `anyOf` branch at run time).
 */
export function simplifySchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(simplifySchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = simplifySchema(v);
  const anyOf = out.anyOf as Record<string, unknown>[] | undefined;
  if (Array.isArray(anyOf) && anyOf.length > 0) {
    const { anyOf: _a, ...rest } = out;
    const onlyKeys = (s: Record<string, unknown>, keys: string[]) =>
      Object.keys(s).every((k) => keys.includes(k));
    if (
      anyOf.every((s) => s.type === 'string' && typeof s.const === 'string' && onlyKeys(s, ['type', 'const']))
    ) {
      return { ...rest, type: 'string', enum: anyOf.map((s) => s.const) };
    }
    if (
      anyOf.every(
        (s) =>
          typeof s.type === 'string' && onlyKeys(s, ['type', 'format']) && !(s.format && s.type !== 'string'),
      )
    ) {
      const formats = new Set(anyOf.map((s) => s.format).filter(Boolean));
      if (formats.size <= 1) {
        return {
          ...rest,
          type: anyOf.map((s) => s.type),
          ...(formats.size ? { format: [...formats][0] } : {}),
        };
      }
    }
  }
  return out;
}
