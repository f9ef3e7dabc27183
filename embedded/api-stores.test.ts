/** The embedded API's stores and ingest administration over an in-memory SQLite file. */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RuleConflictError, RuleExistsError, RuleNotFoundError } from '../api/rules/store.ts';
import { loadConfig } from '../core/config/load.ts';
import { loadRuleSetFrom } from '../detections/rule-set.ts';
import { EmbeddedIngestAdmin } from './api-ports.ts';
import { KvInventoryStore, SqliteAuditLog, SqliteKeyStore, SqliteRuleStore } from './api-stores.ts';
import { EmbeddedStore } from './store.ts';

let store: EmbeddedStore;
beforeEach(() => {
  store = new EmbeddedStore(':memory:');
});
afterEach(() => store.close());

const content = (text = 'rule r {}') => ({
  id: 'r',
  version: 'v1',
  title: 'R',
  kind: 'filter',
  severity: 'low',
  text,
});

describe('embedded API stores', () => {
  it('keys: salted hash, verified in constant time, revocation at once', async () => {
    const keys = new SqliteKeyStore(store);
    const { token, key } = await keys.create('analyst', 'k', 'me');
    expect(await keys.verify(token)).toEqual({ keyId: key.id, name: 'k', role: 'analyst' });
    expect(await keys.verify(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
    expect(await keys.verify('gw_nonsense')).toBeUndefined();
    const raw = JSON.stringify(store.db.prepare('SELECT doc FROM api_keys').all());
    // The secret is base64url (it may itself contain "_"): everything after gw_<id>_.
    expect(raw).not.toContain(token.slice(`gw_${key.id}_`.length));
    expect(await keys.list()).toEqual([key]);
    expect((await keys.revoke(key.id, 'me'))?.revoked_by).toBe('me');
    expect(await keys.verify(token)).toBeUndefined();
    expect(await keys.revoke('0000000000000000', 'me')).toBeUndefined();
  });

  it('audit: newest first, filtered', async () => {
    const audit = new SqliteAuditLog(store);
    for (const action of ['a.one', 'a.two', 'a.one']) {
      await audit.record({
        actor: 'x',
        actor_role: 'admin',
        action,
        target_type: 't',
        target_id: 'id',
        request_id: null,
      });
    }
    expect((await audit.list({ action: 'a.one', size: 10 })).map((e) => e.action)).toEqual([
      'a.one',
      'a.one',
    ]);
    expect(await audit.list({ size: 2 })).toHaveLength(2);
  });

  it('rules: revisions, guarded changes, delete and re-create', async () => {
    const rules = new SqliteRuleStore(store);
    await rules.create(content(), true, 'me');
    await expect(rules.create(content(), true, 'me')).rejects.toBeInstanceOf(RuleExistsError);
    await rules.update(content('rule r { }'), 'me', 1);
    await expect(rules.update(content(), 'me', 1)).rejects.toBeInstanceOf(RuleConflictError);
    expect((await rules.setEnabled('r', false, 'me')).revision).toBe(3);
    await rules.delete('r', 'me');
    expect(await rules.get('r')).toBeUndefined();
    expect(await rules.list()).toEqual([]);
    await expect(rules.setEnabled('r', true, 'me')).rejects.toBeInstanceOf(RuleNotFoundError);
    expect((await rules.create(content(), true, 'me')).revision).toBe(5);
    expect((await rules.revisions('r')).map((r) => r.change)).toEqual([
      'create',
      'delete',
      'disable',
      'update',
      'create',
    ]);
    expect((await rules.revision('r', 2))?.text).toBe('rule r { }');
  });

  it('rules: enabled state of file rules, applied by the rule-set loader', async () => {
    const rules = new SqliteRuleStore(store);
    expect(await rules.fileStates()).toEqual(new Map());
    const config = loadConfig({ env: {} });
    config.detections.rulePaths = ['detections/rules'];
    const id = 'api-key-many-ips';
    const loaded = async () => (await loadRuleSetFrom(config, rules)).rules.find((r) => r.id === id);
    expect((await loaded())?.enabled).toBe(true);
    expect(await rules.setFileEnabled(id, false, 'me')).toMatchObject({
      id,
      enabled: false,
      updated_by: 'me',
    });
    expect((await rules.fileStates()).get(id)?.enabled).toBe(false);
    expect((await loaded())?.enabled).toBe(false);
    await rules.setFileEnabled(id, true, 'me');
    expect((await loaded())?.enabled).toBe(true);
    expect(await rules.list()).toEqual([]);
  });

  it('dead letters: listed newest first in pages, replayed through the normaliser', async () => {
    const config = loadConfig({ env: {} });
    const line = gunzipSync(readFileSync('samples/scenarios/demo/kong-http-log.ndjson.gz'))
      .toString('utf8')
      .split('\n')[0]!;
    store.addDeadLetter('a', 'replay', 'parser bug', line, 1_000);
    store.addDeadLetter('b', 'replay', 'garbage', 'not a log line', 2_000);
    store.addDeadLetter('c', 'other', 'garbage', 'still not', 3_000);
    const admin = new EmbeddedIngestAdmin({ store, config, now: () => 5_000 });
    const p1 = await admin.deadLetters({ size: 2 });
    expect(p1.items.map((d) => d.id)).toEqual(['c', 'b']);
    const p2 = await admin.deadLetters({ size: 2, cursor: p1.next_cursor! });
    expect(p2.items.map((d) => d.id)).toEqual(['a']);
    expect(p2.next_cursor).toBeNull();
    expect((await admin.deadLetters({ size: 10, source: 'other' })).items.map((d) => d.id)).toEqual(['c']);

    expect(await admin.replayDeadLetters({ source: 'replay' })).toEqual({ replayed: 1, failed: 1 });
    expect(store.eventCount()).toBe(1);
    const [letter] = (await admin.deadLetters({ size: 10, source: 'replay' })).items.filter(
      (d) => d.id === 'a',
    );
    expect(letter?.replayed_at).toBe(new Date(5_000).toISOString());
    // Replayed once only.
    expect(await admin.replayDeadLetters({ ids: ['a'] })).toEqual({ replayed: 0, failed: 0 });
    let endpoints = 0;
    for await (const _ of new KvInventoryStore(store).all()) endpoints++;
    expect(endpoints).toBe(1);

    const sources = await admin.sources();
    expect(sources.map((s) => [s.name, s.errors_total])).toEqual([
      ['other', 1],
      ['replay', 2],
    ]);
  });
});
