import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { Session } from './api/types.ts';

export const SessionContext = createContext<Session | null>(null);

/** The signed-in key's session (role and what it may do). */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

/** Load data for a page; reloads when `deps` change, and on demand. Stale answers are dropped. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === seq.current && setState({ data, loading: false }),
      (error: Error) => mine === seq.current && setState({ error, loading: false }),
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** The page's query string as an object, and a setter that keeps it in the URL. */
export function useQuery(): [URLSearchParams, (next: URLSearchParams) => void] {
  const [search, setSearch] = useState(location.search);
  useEffect(() => {
    const on = () => setSearch(location.search);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  const set = useCallback((next: URLSearchParams) => {
    const s = next.toString();
    history.pushState(null, '', `${location.pathname}${s ? `?${s}` : ''}`);
    setSearch(s ? `?${s}` : '');
  }, []);
  return [new URLSearchParams(search), set];
}

/** Set the document title for the page (screen readers announce it on navigation). */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Gatewatch`;
  }, [title]);
}
