/**
 * `gatewatch keys create|list|revoke` — API keys for the REST API. A key is printed once, at
 * creation; only a salted hash is stored. `--embedded [--db <file>]`: keys of the embedded
 * SQLite store (`gatewatch serve --embedded`) instead of Elasticsearch.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { AuditLog, type AuditStore } from '../../api/audit.ts';
import { ApiKeyStore, type KeyStore, ROLES, type Role } from '../../api/auth/keys.ts';
import { createEsClient } from '../../core/store/elasticsearch.ts';
import { SqliteAuditLog, SqliteKeyStore } from '../../embedded/api-stores.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { configOf } from '../config.ts';
import { describeUserError, EXIT, UserError } from '../errors.ts';

interface StoreOptions {
  embedded?: boolean;
  db?: string;
}

async function withStore<T>(
  cmd: Command,
  fn: (store: KeyStore, audit: AuditStore) => Promise<T>,
  where: StoreOptions = {},
): Promise<T> {
  const config = configOf(cmd);
  if (where.embedded) {
    const embedded = new EmbeddedStore(where.db ?? config.embedded.path);
    try {
      return await fn(new SqliteKeyStore(embedded), new SqliteAuditLog(embedded));
    } finally {
      embedded.close();
    }
  }
  const es = createEsClient(config.elasticsearch);
  try {
    const store = new ApiKeyStore(es, config.elasticsearch.indexPrefix);
    const audit = new AuditLog(es, config.elasticsearch.indexPrefix);
    await Promise.all([store.install(), audit.install()]);
    return await fn(store, audit);
  } catch (err) {
    const known = describeUserError(err);
    if (known?.exitCode === EXIT.unavailable)
      throw new UserError(
        `${known.message}; for the embedded store (serve --embedded), add --embedded`,
        known.exitCode,
      );
    throw err;
  } finally {
    await es.close();
  }
}

const actor = () => `cli:${userInfo().username}`;

/** `keys create --role R`: create a key and print it once. */
export async function create(
  opts: { role: string; name: string; json?: boolean } & StoreOptions,
  cmd: Command,
): Promise<void> {
  if (!(ROLES as readonly string[]).includes(opts.role)) {
    console.error(`keys create: --role must be one of ${ROLES.join(', ')}, not ${JSON.stringify(opts.role)}`);
    process.exitCode = 2;
    return;
  }
  await withStore(
    cmd,
    async (store, audit) => {
      const { token, key } = await store.create(opts.role as Role, opts.name, actor());
      await audit.record({
        actor: actor(),
        actor_role: 'cli',
        action: 'key.create',
        target_type: 'api_key',
        target_id: key.id,
        request_id: null,
        details: { role: key.role, name: key.name },
      });
      if (opts.json) console.log(JSON.stringify({ token, key }));
      else {
        console.log(token);
        console.error(
          `key ${key.id} (${key.role}, ${key.name}) created; store the token now, it is not shown again`,
        );
      }
    },
    opts,
  );
}

/** `keys list`: every key, never its secret. */
export async function list(opts: { json?: boolean } & StoreOptions, cmd: Command): Promise<void> {
  await withStore(
    cmd,
    async (store) => {
      const items = await store.list();
      if (opts.json) {
        console.log(JSON.stringify(items));
        return;
      }
      for (const k of items) {
        const state = k.revoked_at ? `revoked ${k.revoked_at}` : 'active';
        console.log(`${k.id}  ${k.role.padEnd(7)}  ${state.padEnd(32)}  ${k.created_at}  ${k.name}`);
      }
      if (items.length === 0) console.error('no keys');
    },
    opts,
  );
}

/** `keys revoke <id>`. */
export async function revoke(id: string, opts: StoreOptions, cmd: Command): Promise<void> {
  await withStore(
    cmd,
    async (store, audit) => {
      const key = await store.revoke(id, actor());
      if (!key) throw new UserError(`keys revoke: no key ${id} (keys list shows the ids)`, EXIT.failure);
      await audit.record({
        actor: actor(),
        actor_role: 'cli',
        action: 'key.revoke',
        target_type: 'api_key',
        target_id: key.id,
        request_id: null,
        details: { role: key.role, name: key.name },
      });
      console.log(`revoked ${key.id} (${key.role}, ${key.name})`);
    },
    opts,
  );
}
