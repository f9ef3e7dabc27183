import { useState } from 'preact/hooks';
import { signIn } from '../api/client.ts';
import { useTitle } from '../hooks.ts';

export function SignIn() {
  useTitle('Sign in');
  const [key, setKey] = useState('');
  return (
    <main class="signin" id="main">
      <h1>Gatewatch</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim()) signIn(key);
        }}
      >
        <label for="key">API key</label>
        <input
          id="key"
          name="key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          placeholder="gw_…"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          required
        />
        <p class="muted">
          Create one with <code>gatewatch keys create --role analyst</code> (add{' '}
          <code>--embedded --db FILE</code> for a replay's database). The key stays in this tab only and is
          sent as a header.
        </p>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
