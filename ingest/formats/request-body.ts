/**
 * Fields of a logged request body (WAF audit logs, nginx `$request_body`): form-encoded or JSON.
 * They are exposed to redaction as `loggedValues`, so passwords and tokens inside bodies are
 * scrubbed from the stored original line; and a body that carries a user name beside a password
 * (a login form, a JSON login, a GraphQL login mutation's variables, an OAuth password grant)
 * names the account the request tried to log in as.
 */

const MAX_BODY = 64 * 1024;
const MAX_FIELDS = 64;

/** Field names that carry a login name (compared lower-case, without separators). */
const USER_FIELDS = new Set([
  'username',
  'user',
  'login',
  'email',
  'useremail',
  'loginname',
  'usernameoremail',
  'account',
  'userid',
]);
const PASSWORD_FIELD = /pass|pwd/i;

export interface BodyFields {
  /** Field name (dotted for nested JSON) → value; form values decoded, plus `<name>.as_logged` when encoding changed them. */
  values: Record<string, string>;
  /** The login name, when the body carries a user name and a password side by side. */
  user?: string;
}

function decodeForm(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

function leaf(name: string): string {
  const dot = name.lastIndexOf('.');
  return (dot < 0 ? name : name.slice(dot + 1)).toLowerCase().replace(/[-_]/g, '');
}

function parent(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(0, dot);
}

function flatten(v: unknown, prefix: string, out: Record<string, string>, depth: number): void {
  if (Object.keys(out).length >= MAX_FIELDS) return;
  if (typeof v === 'string') out[prefix] = v;
  else if (typeof v === 'number' || typeof v === 'boolean') out[prefix] = String(v);
  else if (typeof v === 'object' && v !== null && !Array.isArray(v) && depth < 3) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix === '' ? k : `${prefix}.${k}`, out, depth + 1);
  }
}

/** The fields of a body, or undefined when it is empty, too large, or neither form nor JSON. */
export function requestBodyFields(body: string | undefined, contentType?: string): BodyFields | undefined {
  if (body === undefined || body === '' || body.length > MAX_BODY) return undefined;
  const ct = (contentType ?? '').toLowerCase();
  const values: Record<string, string> = {};
  const first = body.charCodeAt(0);
  if (ct.includes('json') || first === 123 /* { */) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
    flatten(parsed, '', values, 0);
  } else if (ct.includes('x-www-form-urlencoded') || /^[\w.%[\]-]+=/.test(body)) {
    let n = 0;
    for (const part of body.split('&')) {
      if (part === '' || n++ >= MAX_FIELDS) continue;
      const eq = part.indexOf('=');
      const rawName = eq < 0 ? part : part.slice(0, eq);
      const rawValue = eq < 0 ? '' : part.slice(eq + 1);
      const name = decodeForm(rawName);
      const value = decodeForm(rawValue);
      values[name] = value;
      if (value !== rawValue) values[`${name}.as_logged`] = rawValue;
    }
  } else return undefined;
  const names = Object.keys(values);
  if (names.length === 0) return undefined;
  let user: string | undefined;
  for (const name of names) {
    if (!USER_FIELDS.has(leaf(name))) continue;
    const v = values[name]!;
    const scope = parent(name);
    const hasPassword = names.some(
      (n) => parent(n) === scope && PASSWORD_FIELD.test(leaf(n)) && !n.endsWith('.as_logged'),
    );
    if (hasPassword && v !== '' && v.length <= 256) {
      user = v;
      break;
    }
  }
  return user === undefined ? { values } : { values, user };
}
