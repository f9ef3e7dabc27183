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
  422: 'Rule text does not parse or check (errors carry line and column).',
  429: 'Rate limit exceeded for this key.',
  500: 'Server error (no internals disclosed).',
  503: 'Not ready.',
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
export const COMMON_ERRORS = [400, 401, 403, 404, 413, 415, 429, 500] as const;
export const PUBLIC_ERRORS = [400, 404, 500] as const;
