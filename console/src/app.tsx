/**
 * The console shell: sign-in with an API key, the navigation, and the pages. Pages that
 * edit rule text load the editor (CodeMirror) on demand, so the queue stays light.
 */
import { lazy, Suspense } from 'preact/compat';
import { useEffect, useState } from 'preact/hooks';
import { Link, Route, Switch } from 'wouter-preact';
import { api, hasKey, must, onKeyChange, signIn, signOut } from './api/client.ts';
import type { Session } from './api/types.ts';
import { ErrorNote, Loading } from './components/ui.tsx';
import { SessionContext } from './hooks.ts';
import { EntityPage } from './pages/Entity.tsx';
import { IncidentPage } from './pages/Incident.tsx';
import { InventoryPage } from './pages/Inventory.tsx';
import { OperationsPage } from './pages/Operations.tsx';
import { QueuePage } from './pages/Queue.tsx';
import { RulesPage } from './pages/Rules.tsx';
import { SignIn } from './pages/SignIn.tsx';

const RulePage = lazy(() => import('./pages/Rule.tsx'));
const EventsPage = lazy(() => import('./pages/Events.tsx'));

/** A key handed over in the URL fragment (`/#key=…`, never sent to the server) signs in once. */
function takeKeyFromFragment(): void {
  const m = /^#key=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (m) {
    signIn(m[1]!);
    history.replaceState(null, '', location.pathname + location.search);
  }
}

const NAV = [
  ['/', 'Incidents'],
  ['/rules', 'Rules'],
  ['/events', 'Events'],
  ['/inventory', 'Inventory'],
  ['/operations', 'Health'],
] as const;

export function App() {
  takeKeyFromFragment();
  const [signedIn, setSignedIn] = useState(hasKey());
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<unknown>();
  useEffect(() => onKeyChange(() => setSignedIn(hasKey())), []);
  useEffect(() => {
    setSession(null);
    setError(undefined);
    if (!signedIn) return;
    must(api.GET('/api/v1/session')).then(setSession, setError);
  }, [signedIn]);

  if (!signedIn) return <SignIn />;
  if (error) {
    return (
      <main class="signin">
        <ErrorNote error={error} />
        <button type="button" onClick={signOut}>
          Sign in with another key
        </button>
      </main>
    );
  }
  if (!session) return <Loading what="session" />;
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Gatewatch</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([href, label]) => (
              <li key={href}>
                <Link href={href} className={(active: boolean) => (active ? 'active' : '')}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who" data-testid="who">
          {session.name} · <span class="role">{session.role}</span>
        </span>
        <button type="button" class="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main">
        <Suspense fallback={<Loading what="page" />}>
          <Switch>
            <Route path="/" component={QueuePage} />
            <Route path="/incidents" component={QueuePage} />
            <Route path="/incidents/:id">{(p: { id: string }) => <IncidentPage id={p.id} />}</Route>
            <Route path="/entities/:type/:value">
              {(p: { type: string; value: string }) => (
                <EntityPage type={p.type} value={decodeURIComponent(p.value)} />
              )}
            </Route>
            <Route path="/rules" component={RulesPage} />
            <Route path="/rules/new">{() => <RulePage id={null} />}</Route>
            <Route path="/rules/:id">{(p: { id: string }) => <RulePage id={p.id} />}</Route>
            <Route path="/events" component={EventsPage} />
            <Route path="/inventory" component={InventoryPage} />
            <Route path="/operations" component={OperationsPage} />
            <Route>
              <h1>Not found</h1>
              <p>
                No console page here. <Link href="/">Go to the incident queue</Link>.
              </p>
            </Route>
          </Switch>
        </Suspense>
      </main>
    </SessionContext.Provider>
  );
}
