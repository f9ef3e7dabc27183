/**
 * RFC 9457 problem details: every error the API returns is `application/problem+json` with
 * type, title, status, detail and instance; validation errors list the failing fields. No
 * stack trace or internal message ever reaches a client: 5xx answers say only that the
 * server failed, and the log has the rest (with the same request id).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI identifying the problem type.' }),
    title: Type.String({ description: 'Short summary of the problem type.' }),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.String({ description: 'What went wrong in this occurrence.' }),
    instance: Type.String({ description: 'The request path this occurrence belongs to.' }),
    request_id: Type.String(),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String({ description: 'JSON pointer into the request part, e.g. /body/status.' }),
          message: Type.String(),
          line: Type.Optional(Type.Integer()),
          column: Type.Optional(Type.Integer()),
        }),
        { description: 'Failing fields (validation) or source positions (rule text).' },
      ),
    ),
  },
  { $id: 'Problem', title: 'Problem' },
);

export interface ProblemField {
  field: string;
  message: string;
  line?: number;
  column?: number;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error a route throws to answer with a specific problem. */
export class HttpProblem extends Error {
  override name = 'HttpProblem';
  readonly status: number;
  readonly slug: string;
  readonly errors: ProblemField[] | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(
    status: number,
    slug: string,
    detail: string,
    extra: { errors?: ProblemField[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.status = status;
    this.slug = slug;
    this.errors = extra.errors;
    this.headers = extra.headers;
  }
}

export function problemBody(
  request: FastifyRequest,
  status: number,
  slug: string,
  detail: string,
  errors?: ProblemField[],
) {
  return {
    type: `urn:gatewatch:problem:${slug}`,
    title: TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error'),
    status,
    detail,
    instance: request.url.split('?')[0] ?? '/',
    request_id: String(request.id),
    ...(errors ? { errors } : {}),
  };
}

export function sendProblem(
  reply: FastifyReply,
  status: number,
  slug: string,
  detail: string,
  errors?: ProblemField[],
) {
  return reply
    .code(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problemBody(reply.request, status, slug, detail, errors));
}

interface AjvError {
  instancePath: string;
  schemaPath?: string;
  keyword: string;
  message?: string;
  params?: Record<string, unknown>;
  /** The value that failed (ajv's `verbose` option). */
  data?: unknown;
}

/**
 * Parameters renamed for one convention across the API (page size `limit`); the old name is
 * answered with a message naming the new one.
 */
export const RENAMED_PARAMETERS: Record<string, string> = { size: 'limit' };

/** A value as a message quotes it (short). */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

const list = (values: unknown[]) =>
  values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');

/**
 * One error per mistake. A value failing a union (`anyOf` of constants or types, as TypeBox
 * writes enums and nullable fields) is one error naming what is allowed, instead of one
 * "must be equal to constant" per alternative and a "must match a schema in anyOf"; `enum`
 * names its values too.
 */
function oneErrorPerMistake(errors: AjvError[]): AjvError[] {
  const out: AjvError[] = [];
  const absorbed = new Set<AjvError>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf' || !e.schemaPath) continue;
    const branches = errors.filter(
      (b) => b !== e && b.instancePath === e.instancePath && b.schemaPath?.startsWith(`${e.schemaPath}/`),
    );
    if (branches.length === 0 || !branches.every((b) => b.keyword === 'const' || b.keyword === 'type'))
      continue;
    const allowed = [
      ...branches.filter((b) => b.keyword === 'const').map((b) => b.params?.allowedValue),
      ...branches.filter((b) => b.keyword === 'type').map((b) => b.params?.type),
    ];
    for (const b of branches) absorbed.add(b);
    e.message =
      branches.every((b) => b.keyword === 'const') && e.data !== undefined
        ? `${quote(e.data)} is not one of: ${list(allowed)}`
        : `must be one of: ${list(allowed)}`;
    e.keyword = 'enum';
  }
  for (const e of errors) {
    if (absorbed.has(e)) continue;
    if (e.keyword === 'enum' && Array.isArray(e.params?.allowedValues))
      e.message = `${e.data !== undefined ? `${quote(e.data)} is not one of` : 'must be one of'}: ${list(e.params.allowedValues)}`;
    out.push(e);
  }
  return out;
}

function validationFields(error: FastifyError): ProblemField[] {
  const context = (error as FastifyError & { validationContext?: string }).validationContext ?? 'request';
  return oneErrorPerMistake((error.validation ?? []) as AjvError[]).map((e) => {
    let pointer = e.instancePath;
    let message = e.message ?? e.keyword;
    if (e.keyword === 'required' && typeof e.params?.missingProperty === 'string') {
      pointer += `/${e.params.missingProperty}`;
    }
    if (e.keyword === 'additionalProperties' && typeof e.params?.additionalProperty === 'string') {
      const name = e.params.additionalProperty;
      pointer += `/${name}`;
      const what = context === 'querystring' ? 'parameter' : 'field';
      const renamed = RENAMED_PARAMETERS[name];
      const properties = (e as { parentSchema?: { properties?: Record<string, unknown> } }).parentSchema
        ?.properties;
      message =
        renamed && properties && renamed in properties
          ? `\`${name}\` is not a ${what}: the page size is \`${renamed}\` (one name across the API)`
          : `\`${name}\` is not a ${what} here${properties ? ` (known: ${Object.keys(properties).join(', ')})` : ''}`;
    }
    return { field: `/${context}${pointer}`, message };
  });
}

/** Whether an error comes from the Elasticsearch client, and whether it means "try again later". */
function storageFailure(error: Error): 'unavailable' | 'failed' | undefined {
  switch (error.name) {
    case 'ConnectionError':
    case 'NoLivingConnectionsError':
    case 'TimeoutError':
      return 'unavailable';
    case 'ResponseError': {
      const status = (error as { statusCode?: number }).statusCode ?? 500;
      return [429, 502, 503, 504].includes(status) ? 'unavailable' : 'failed';
    }
    default:
      return undefined;
  }
}

/** Fastify error handler: everything becomes a problem document. */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof HttpProblem) {
    if (error.headers) reply.headers(error.headers);
    return sendProblem(reply, error.status, error.slug, error.message, error.errors);
  }
  if (error.validation) {
    const fields = validationFields(error);
    const detail = `request validation failed: ${fields.map((f) => `${f.field} ${f.message}`).join('; ')}`;
    return sendProblem(reply, 400, 'validation', detail, fields);
  }
  // Elasticsearch unreachable, slow or shedding load: the service is unavailable for a moment.
  // Its other answers are the server's failure, not the client's (ResponseError carries
  // Elasticsearch's status code, which must not pass for this API's).
  const storage = storageFailure(error);
  if (storage === 'unavailable') {
    reply.header('retry-after', '5');
    return sendProblem(
      reply,
      503,
      'storage-unavailable',
      'Elasticsearch does not answer for now; retry shortly',
    );
  }
  const status = storage === 'failed' ? 500 : (error.statusCode ?? 500);
  if (status >= 400 && status < 500) {
    const slug =
      status === 413
        ? 'body-too-large'
        : status === 415
          ? 'unsupported-media-type'
          : status === 429
            ? 'rate-limited'
            : status === 400
              ? 'bad-request'
              : 'client-error';
    // Fastify's own client errors (bad JSON, wrong content type, body limit) carry safe messages.
    const detail =
      error.code?.startsWith('FST_') || status === 429 ? error.message : (TITLES[status] ?? 'client error');
    return sendProblem(reply, status, slug, detail);
  }
  request.log.error({ err: error }, 'request failed');
  return sendProblem(
    reply,
    500,
    'internal',
    'the server failed to handle this request; see its log for request id ' + request.id,
  );
}
