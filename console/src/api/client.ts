/**
 * The console's only way to the server: a typed client over the API's OpenAPI document
 * (types generated into ./schema.d.ts). The key is sent as a header on every request, never
 * as a cookie; it lives in this tab's sessionStorage until sign-out or the tab closes.
 */
import createClient from 'openapi-fetch';
import type { paths } from './schema';

export type { paths };

const STORAGE = 'gatewatch.key';

export const api = createClient<paths>({ baseUrl: '' });

let key: string | null = sessionStorage.getItem(STORAGE);
const listeners = new Set<() => void>();

api.use({
  onRequest({ request }) {
    if (key) request.headers.set('authorization', `Bearer ${key}`);
    return request;
  },
  onResponse({ response }) {
    // A revoked or unknown key: back to sign-in.
    if (response.status === 401 && key) signOut();
    return response;
  },
});

export function hasKey(): boolean {
  return key !== null;
}

export function signIn(token: string): void {
  key = token.trim();
  sessionStorage.setItem(STORAGE, key);
  for (const l of listeners) l();
}

export function signOut(): void {
  key = null;
  sessionStorage.removeItem(STORAGE);
  for (const l of listeners) l();
}

export function onKeyChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** An RFC 9457 problem from the API, with its field errors (line and column for rule text). */
export interface Problem {
  status: number;
  title?: string;
  detail?: string;
  errors?: { field?: string; message: string; line?: number; column?: number }[];
}

export class ApiError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail ?? problem.title ?? `HTTP ${problem.status}`);
    this.problem = problem;
  }
}

/** The data of a successful answer, or an ApiError carrying the problem. */
export async function must<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) {
    const p = (error ?? {}) as Partial<Problem>;
    throw new ApiError({ ...p, status: response.status });
  }
  return data as T;
}
