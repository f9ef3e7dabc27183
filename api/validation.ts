/**
 * Request validation: JSON bodies are validated strictly (no type coercion: `false` is not the
 * string "false"); query strings, path parameters and headers, which are text on the wire,
 * are coerced to the schema's types (and single values to one-element arrays).
 *
 * ajv and ajv-formats are Fastify's own validator (dependencies of fastify and of
 * @fastify/type-provider-typebox).
 */
import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchema, FastifySchemaCompiler } from 'fastify';

// ajv-formats is CommonJS; under ESM its function may sit on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => Ajv;

function make(options: Options): Ajv {
  const ajv = new Ajv({
    removeAdditional: false,
    useDefaults: true,
    allErrors: true,
    // errors carry the failing value and schema (api/problem.ts names the value and, for a
    // renamed parameter, its new name)
    verbose: true,
    strict: false,
    ...options,
  });
  addFormats(ajv);
  return ajv;
}

const strictAjv = make({ coerceTypes: false });
const coercingAjv = make({ coerceTypes: 'array' });

export const validatorCompiler: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema as object);
