/**
 * Validate OpenAPI 3.0 / 3.1 and Swagger 2.0 documents (the structure the inventory relies
 * on: versions, info, servers/basePath, paths, operations, parameters, responses, local
 * $refs) and normalise them into a flat list of operations.
 */
import { createHash } from 'node:crypto';
import { type ParsedSpec, pointerOf, SpecInvalidError, type SpecProblem, splitPointer } from './parse.ts';

export type SpecFormat = 'openapi-3.0' | 'openapi-3.1' | 'swagger-2.0';

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

export interface SpecOperation {
  method: string;
  /** Path as written in the spec (`/users/{id}`). */
  path: string;
  /** Path with each base path in front (`/api/v1/users/{id}`). */
  fullPaths: string[];
  operationId?: string;
  deprecated: boolean;
  queryParams: string[];
  pathParams: string[];
  /** Documented response keys: `200`, `4XX`, `default`. */
  statuses: string[];
  /** true/false when the spec says (security requirements), undefined when silent. */
  requiresAuth?: boolean;
}

export interface NormalizedSpec {
  format: SpecFormat;
  title: string;
  apiVersion: string;
  /** Hosts named by servers[].url (OpenAPI 3) or host (Swagger 2). */
  hosts: string[];
  basePaths: string[];
  operations: SpecOperation[];
  digest: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const PATH_ITEM_FIELDS = new Set([
  ...HTTP_METHODS,
  '$ref',
  'summary',
  'description',
  'servers',
  'parameters',
]);
const STATUS_KEY = /^(default|[1-5](\d\d|XX))$/;

class Checker {
  readonly problems: SpecProblem[] = [];
  readonly root: Obj;
  readonly format: SpecFormat;
  constructor(root: Obj, format: SpecFormat) {
    this.root = root;
    this.format = format;
  }

  add(path: (string | number)[], message: string): void {
    if (this.problems.length < 100) this.problems.push({ pointer: pointerOf(path), message });
  }

  /** Resolve a local $ref (following chains); undefined with a problem when it does not resolve. */
  resolve(
    value: unknown,
    path: (string | number)[],
  ): { value: unknown; path: (string | number)[] } | undefined {
    let cur = value;
    let curPath = path;
    for (let hops = 0; isObj(cur) && typeof cur.$ref === 'string'; hops++) {
      const ref = cur.$ref;
      if (hops > 20) {
        this.add([...curPath, '$ref'], 'circular $ref');
        return undefined;
      }
      if (!ref.startsWith('#')) {
        this.add([...curPath, '$ref'], `external $ref "${ref}" is not supported: bundle the document first`);
        return undefined;
      }
      const segs = splitPointer(decodeURIComponent(ref.slice(1)));
      let target: unknown = this.root;
      for (const s of segs)
        target = isObj(target) ? target[s] : Array.isArray(target) ? target[Number(s)] : undefined;
      if (target === undefined) {
        this.add([...curPath, '$ref'], `$ref "${ref}" does not resolve to anything in this document`);
        return undefined;
      }
      cur = target;
      curPath = segs;
    }
    return { value: cur, path: curPath };
  }
}

function detectFormat(doc: Obj, problems: SpecProblem[]): SpecFormat | undefined {
  if (doc.swagger !== undefined) {
    if (doc.swagger === '2.0') return 'swagger-2.0';
    problems.push({
      pointer: '/swagger',
      message: `unsupported Swagger version ${JSON.stringify(doc.swagger)}: expected "2.0"`,
    });
    return undefined;
  }
  if (doc.openapi !== undefined) {
    if (typeof doc.openapi === 'string' && /^3\.0\.\d+(-.+)?$/.test(doc.openapi)) return 'openapi-3.0';
    if (typeof doc.openapi === 'string' && /^3\.1\.\d+(-.+)?$/.test(doc.openapi)) return 'openapi-3.1';
    problems.push({
      pointer: '/openapi',
      message: `unsupported OpenAPI version ${JSON.stringify(doc.openapi)}: expected a string "3.0.x" or "3.1.x"`,
    });
    return undefined;
  }
  problems.push({
    pointer: '',
    message: 'not an API description: missing "openapi: 3.x.y" or "swagger: \\"2.0\\""',
  });
  return undefined;
}

function templateVars(path: string): string[] | undefined {
  const vars: string[] = [];
  let depth = 0;
  let name = '';
  for (const ch of path) {
    if (ch === '{') {
      if (depth > 0) return undefined;
      depth = 1;
      name = '';
    } else if (ch === '}') {
      if (depth === 0 || name === '') return undefined;
      depth = 0;
      vars.push(name);
    } else if (depth > 0) name += ch;
  }
  return depth === 0 ? vars : undefined;
}

function serverBase(url: string, variables: unknown): { host?: string; base: string } {
  let u = url.replace(/\{([^}]+)\}/g, (_, v: string) => {
    const def = isObj(variables) && isObj(variables[v]) ? variables[v].default : undefined;
    return typeof def === 'string' ? def : '';
  });
  let host: string | undefined;
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)(.*)$/i.exec(u);
  if (m) {
    host =
      m[1]!
        .replace(/^[^@]*@/, '')
        .replace(/:\d+$/, '')
        .toLowerCase() || undefined;
    u = m[2]!;
  } else if (u.startsWith('//')) {
    const rest = u.slice(2);
    const slash = rest.indexOf('/');
    host = (slash < 0 ? rest : rest.slice(0, slash)).replace(/:\d+$/, '').toLowerCase() || undefined;
    u = slash < 0 ? '' : rest.slice(slash);
  }
  u = u.split(/[?#]/)[0]!;
  if (u !== '' && !u.startsWith('/')) u = `/${u}`;
  return { ...(host ? { host } : {}), base: u.replace(/\/+$/, '') };
}

function requiresAuth(security: unknown): boolean | undefined {
  if (!Array.isArray(security)) return undefined;
  if (security.length === 0) return false;
  return !security.some((s) => isObj(s) && Object.keys(s).length === 0);
}

/** Validate a parsed document; throws `SpecInvalidError` (with positions) or returns the normalised spec. */
export function normalizeSpec(parsed: ParsedSpec): NormalizedSpec {
  const problems: SpecProblem[] = [];
  const doc = parsed.doc;
  const fail = (ps: SpecProblem[]): never => {
    throw new SpecInvalidError(
      ps.map((p) => {
        const pos = parsed.locate(p.pointer);
        return pos ? { ...p, line: pos.line, column: pos.column } : p;
      }),
    );
  };
  if (!isObj(doc))
    fail([{ pointer: '', message: 'the document must be an object (an OpenAPI or Swagger description)' }]);
  const root = doc as Obj;
  const format = detectFormat(root, problems);
  if (!format) return fail(problems);
  const c = new Checker(root, format);
  const swagger = format === 'swagger-2.0';

  // info
  let title = '';
  let apiVersion = '';
  if (!isObj(root.info)) c.add(['info'], 'required object "info" is missing');
  else {
    if (typeof root.info.title !== 'string') c.add(['info', 'title'], 'required string "title" is missing');
    else title = root.info.title;
    if (typeof root.info.version !== 'string')
      c.add(['info', 'version'], 'required string "version" is missing (it must be a string, e.g. "1.0")');
    else apiVersion = root.info.version;
  }

  // servers / basePath
  const hosts = new Set<string>();
  let rootBases: string[] = [''];
  const basesOf = (servers: unknown, path: (string | number)[]): string[] | undefined => {
    if (servers === undefined) return undefined;
    if (!Array.isArray(servers)) {
      c.add(path, '"servers" must be an array');
      return undefined;
    }
    const bases: string[] = [];
    servers.forEach((s, i) => {
      if (!isObj(s) || typeof s.url !== 'string')
        c.add([...path, i, 'url'], 'each server needs a string "url"');
      else {
        const { host, base } = serverBase(s.url, s.variables);
        if (host) hosts.add(host);
        if (!bases.includes(base)) bases.push(base);
      }
    });
    return bases.length > 0 ? bases : undefined;
  };
  if (swagger) {
    if (root.basePath !== undefined) {
      if (typeof root.basePath !== 'string' || !root.basePath.startsWith('/'))
        c.add(['basePath'], '"basePath" must be a string starting with "/"');
      else rootBases = [root.basePath.replace(/\/+$/, '')];
    }
    if (root.host !== undefined) {
      if (typeof root.host !== 'string' || /[/:]{2}|\//.test(root.host))
        c.add(['host'], '"host" must be a host name (and optional port) without scheme or path');
      else hosts.add(root.host.replace(/:\d+$/, '').toLowerCase());
    }
  } else {
    rootBases = basesOf(root.servers, ['servers']) ?? [''];
  }

  // paths
  const operations: SpecOperation[] = [];
  const operationIds = new Map<string, string>();
  if (root.paths === undefined) {
    if (format !== 'openapi-3.1') c.add(['paths'], 'required object "paths" is missing');
  } else if (!isObj(root.paths)) c.add(['paths'], '"paths" must be an object');
  else {
    for (const [path, rawItem] of Object.entries(root.paths)) {
      const ip = ['paths', path];
      if (path.startsWith('x-')) continue;
      if (!path.startsWith('/')) {
        c.add(ip, `path "${path}" must start with "/"`);
        continue;
      }
      const vars = templateVars(path);
      if (!vars) {
        c.add(ip, `path "${path}" has unbalanced or empty braces in its template`);
        continue;
      }
      if (new Set(vars).size !== vars.length) c.add(ip, `path "${path}" uses a template variable twice`);
      const resolvedItem = c.resolve(rawItem, ip);
      if (!resolvedItem) continue;
      const item = resolvedItem.value;
      if (!isObj(item)) {
        c.add(ip, 'a path item must be an object');
        continue;
      }
      for (const k of Object.keys(item)) {
        if (!PATH_ITEM_FIELDS.has(k) && !k.startsWith('x-')) {
          c.add(
            [...ip, k],
            `unknown field "${k}" in a path item (expected an HTTP method in lower case, parameters, servers, summary or description)`,
          );
        }
      }
      const itemBases = swagger ? undefined : basesOf(item.servers, [...ip, 'servers']);
      const itemParams = readParams(c, item.parameters, [...ip, 'parameters']);
      for (const method of HTTP_METHODS) {
        const rawOp = item[method];
        if (rawOp === undefined) continue;
        const op = [...ip, method];
        if (!isObj(rawOp)) {
          c.add(op, 'an operation must be an object');
          continue;
        }
        const opParams = readParams(c, rawOp.parameters, [...op, 'parameters']);
        // operation parameters override path-level ones by (name, in)
        const params = new Map<
          string,
          { name: string; in: string; required?: unknown; path: (string | number)[] }
        >();
        for (const p of [...itemParams, ...opParams]) params.set(`${p.in}:${p.name}`, p);
        const pathParams = [...params.values()].filter((p) => p.in === 'path');
        for (const v of vars) {
          if (!pathParams.some((p) => p.name === v)) {
            c.add(
              [...op],
              `path parameter "{${v}}" of "${path}" is not declared in the parameters of ${method.toUpperCase()} (or of the path item)`,
            );
          }
        }
        for (const p of pathParams) {
          if (!vars.includes(p.name))
            c.add(p.path, `path parameter "${p.name}" does not appear in the path template "${path}"`);
          if (p.required !== true)
            c.add([...p.path, 'required'], `path parameter "${p.name}" must have "required: true"`);
        }
        if (rawOp.deprecated !== undefined && typeof rawOp.deprecated !== 'boolean') {
          c.add([...op, 'deprecated'], '"deprecated" must be true or false');
        }
        if (rawOp.operationId !== undefined) {
          if (typeof rawOp.operationId !== 'string')
            c.add([...op, 'operationId'], '"operationId" must be a string');
          else if (operationIds.has(rawOp.operationId)) {
            c.add(
              [...op, 'operationId'],
              `operationId "${rawOp.operationId}" is already used by ${operationIds.get(rawOp.operationId)}`,
            );
          } else operationIds.set(rawOp.operationId, `${method.toUpperCase()} ${path}`);
        }
        const statuses: string[] = [];
        if (rawOp.responses === undefined) {
          if (format !== 'openapi-3.1') c.add([...op, 'responses'], 'required object "responses" is missing');
        } else if (
          !isObj(rawOp.responses) ||
          Object.keys(rawOp.responses).filter((k) => !k.startsWith('x-')).length === 0
        ) {
          c.add([...op, 'responses'], '"responses" must be an object with at least one response');
        } else {
          for (const [code, resp] of Object.entries(rawOp.responses)) {
            if (code.startsWith('x-')) continue;
            const rp = [...op, 'responses', code];
            if (!STATUS_KEY.test(code)) {
              c.add(
                rp,
                `response key "${code}" is not a status code (100-599), a range such as "4XX", or "default"`,
              );
              continue;
            }
            statuses.push(code);
            const r = c.resolve(resp, rp);
            if (r && (!isObj(r.value) || typeof r.value.description !== 'string')) {
              c.add(r.path, 'a response needs a string "description"');
            }
          }
        }
        if (rawOp.security !== undefined && !Array.isArray(rawOp.security))
          c.add([...op, 'security'], '"security" must be an array');
        const opBases = swagger ? undefined : basesOf(rawOp.servers, [...op, 'servers']);
        const bases = opBases ?? itemBases ?? rootBases;
        const auth = requiresAuth(rawOp.security ?? root.security);
        operations.push({
          method: method.toUpperCase(),
          path,
          fullPaths: bases.map((b) => (b + path).replace(/\/{2,}/g, '/')),
          ...(typeof rawOp.operationId === 'string' ? { operationId: rawOp.operationId } : {}),
          deprecated: rawOp.deprecated === true,
          queryParams: [...params.values()]
            .filter((p) => p.in === 'query')
            .map((p) => p.name)
            .sort(),
          pathParams: vars,
          statuses: statuses.sort(),
          ...(auth !== undefined ? { requiresAuth: auth } : {}),
        });
      }
    }
  }
  if (c.problems.length > 0) fail(c.problems);
  const digest = createHash('sha256')
    .update(JSON.stringify({ format, title, apiVersion, operations }))
    .digest('hex')
    .slice(0, 16);
  return { format, title, apiVersion, hosts: [...hosts].sort(), basePaths: rootBases, operations, digest };
}

function readParams(
  c: Checker,
  raw: unknown,
  path: (string | number)[],
): { name: string; in: string; required?: unknown; path: (string | number)[] }[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    c.add(path, '"parameters" must be an array');
    return [];
  }
  const allowed =
    c.format === 'swagger-2.0'
      ? ['query', 'header', 'path', 'formData', 'body']
      : ['query', 'header', 'path', 'cookie'];
  const out: { name: string; in: string; required?: unknown; path: (string | number)[] }[] = [];
  raw.forEach((p, i) => {
    const r = c.resolve(p, [...path, i]);
    if (!r) return;
    const v = r.value;
    if (!isObj(v)) {
      c.add(r.path, 'a parameter must be an object');
      return;
    }
    if (typeof v.name !== 'string' || v.name === '')
      c.add([...r.path, 'name'], 'a parameter needs a non-empty string "name"');
    if (typeof v.in !== 'string' || !allowed.includes(v.in)) {
      c.add(
        [...r.path, 'in'],
        `"in" must be one of ${allowed.join(', ')}${v.in !== undefined ? ` (got ${JSON.stringify(v.in)})` : ''}`,
      );
    }
    if (typeof v.name === 'string' && typeof v.in === 'string')
      out.push({ name: v.name, in: v.in, required: v.required, path: r.path });
  });
  return out;
}
