/**
 * Authentication attempts: which requests tried to authenticate, and whether that worked.
 *
 * A login form is only one way in. Basic auth on an ordinary `GET`, an API key on every call, an
 * OAuth token endpoint, a password-reset route and a GraphQL login mutation all check
 * credentials; stuffing, spraying and takeover happen on all of them. So a request is an
 * **attempt** (`gatewatch.auth.attempt`) when it carried credentials, when it addressed an
 * authentication endpoint with a method that submits something, or when it was answered 401 and
 * the log does not show its headers (a 401 says credentials were checked and refused).
 *
 * The **outcome** (`gatewatch.auth.outcome`) follows the status code, with different semantics on
 * and off authentication endpoints (configurable per source):
 * - on an endpoint, 400/401/403/422 are failures (OAuth answers a wrong password with 400
 *   `invalid_grant`; many login APIs use 403 or 422), 2xx and 3xx are successes;
 * - elsewhere only 401 (and 407) is a failure: a 403 or 404 with credentials is an authorisation
 *   or routing answer to a caller whose credentials were accepted, 2xx/3xx are successes;
 * - anything else, and any request a WAF blocked (its credentials were never checked), is
 *   `unknown`.
 */
import type { EventDraft } from '../formats/types.ts';
import { child } from '../formats/util.ts';

export interface AuthConfig {
  /**
   * Extra authentication endpoints, as globs on the URL path (`*` matches within a segment, `**`
   * across segments), e.g. `/api/*\/session`. Added to the built-in patterns.
   */
  endpoints?: string[];
  /** Status codes that mean "credentials refused" on authentication endpoints (default 400, 401, 403, 422). */
  endpointFailureStatus?: number[];
  /** Status codes that mean "credentials refused" anywhere else (default 401, 407). */
  failureStatus?: number[];
  /**
   * Status codes that mean "credentials accepted" (default every 2xx and 3xx). Set it for a form
   * login that answers a failure with a redirect too, e.g. `[200]`.
   */
  successStatus?: number[];
}

/**
 * Built-in authentication endpoints: a path segment naming a login, token, session or
 * password-reset action, in the spellings frameworks use (`/login`, `/api/v1/auth/signin`,
 * `/users/sign_in`, `/oauth2/token`, `/connect/token`, `/password/reset`, `/forgot-password`,
 * `/mfa/verify`...).
 */
const ENDPOINT_SEGMENT =
  /^(?:log[-_]?in|sign[-_]?in|log[-_]?on|authenticate|authentication|auth|token|tokens|session|sessions|sso|saml|otp|mfa|2fa|two[-_]factor|verify[-_]?(?:otp|code|mfa)|(?:forgot|reset|change|lost)[-_]?password|password[-_]?(?:reset|forgot|recovery|change)|passwords?)$/i;
/** Methods that submit credentials to an endpoint (a `GET /login` fetches the form; `GET /auth/callback` is a redirect). */
const SUBMITTING = new Set(['POST', 'PUT', 'PATCH']);
const GRAPHQL_LOGIN =
  /(?:^|[&?])(?:operationName|operation)=(?:[^&]*?)(?:login|signin|sign_in|authenticate|token)/i;

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else re += /[.+?^${}()|[\]\\]/.test(c) ? `\\${c}` : c;
  }
  return new RegExp(`^${re}$`, 'i');
}

/** Whether the path addresses an authentication endpoint by one of its segments. */
export function isAuthEndpointPath(path: string): boolean {
  let start = path.charCodeAt(0) === 47 ? 1 : 0;
  while (start < path.length) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    if (end > start && end - start <= 24 && ENDPOINT_SEGMENT.test(path.slice(start, end))) return true;
    start = end + 1;
  }
  return false;
}

export interface AuthClassifier {
  apply(ev: EventDraft): void;
}

export function createAuthClassifier(config: AuthConfig = {}): AuthClassifier {
  const extra = (config.endpoints ?? []).map(globToRegExp);
  const endpointFailure = new Set(config.endpointFailureStatus ?? [400, 401, 403, 422]);
  const failure = new Set(config.failureStatus ?? [401, 407]);
  const success = config.successStatus === undefined ? undefined : new Set(config.successStatus);
  const isSuccess = (status: number) =>
    success === undefined ? status >= 200 && status < 400 : success.has(status);

  const isEndpoint = (path: string, query: string | undefined): boolean => {
    if (isAuthEndpointPath(path)) return true;
    for (const re of extra) if (re.test(path)) return true;
    // GraphQL login mutations are visible only when the operation name is logged.
    return query !== undefined && path.toLowerCase().endsWith('/graphql') && GRAPHQL_LOGIN.test(query);
  };

  return {
    apply(ev) {
      const path = ev.url?.path;
      if (path === undefined) return;
      const gw = child(ev, 'gatewatch');
      const auth = gw.auth;
      const method = ev.http?.request?.method;
      const status = ev.http?.response?.status_code;
      const endpoint = isEndpoint(path, ev.url?.query);
      const carried = auth?.present === true || gw.api_key?.source !== undefined;
      // Headers logged and none carried a credential: a 401 is an anonymous probe, not an attempt.
      const headersShowNone = auth?.present === false;
      const attempt =
        carried ||
        (endpoint && method !== undefined && SUBMITTING.has(method)) ||
        (status === 401 && !headersShowNone);
      if (!endpoint && !attempt) return;
      const out = auth ?? {};
      gw.auth = out;
      if (endpoint) out.endpoint = true;
      if (!attempt) return;
      out.attempt = true;
      let outcome: 'success' | 'failure' | 'unknown' = 'unknown';
      const blocked = gw.waf?.action === 'block';
      if (status !== undefined && !blocked) {
        if ((endpoint ? endpointFailure : failure).has(status)) outcome = 'failure';
        else if (isSuccess(status)) outcome = 'success';
      }
      out.outcome = outcome;
    },
  };
}
