/**
 * Retention in the embedded store: the same policy as Elasticsearch's, measured back from the
 * file's newest event, and the space given back to the disk (a real SQLite file).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { makeIncident } from '../api/testing/fixtures.ts';
import { loadConfig } from '../core/config/load.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import { INVENTORY_KEY } from './replay.ts';
import { applyEmbeddedRetention, formatEmbeddedRetention, lastEmbeddedRetention } from './retention.ts';
import { EmbeddedStore } from './store.ts';

const DAY = 86_400_000;
const NEWEST = Date.parse('2025-06-30T12:00:00Z');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-retention-'));
  dirs.push(dir);
  return join(dir, 'store.sqlite');
}

/** 60 days of events, 400 a day, about 1 KB each, the newest at NEWEST. */
function fill(store: EmbeddedStore): void {
  for (let day = 0; day < 60; day++) {
    const events: GatewatchEvent[] = Array.from({ length: 400 }, (_, i) => ({
      '@timestamp': new Date(NEWEST - day * DAY - i * 1000).toISOString(),
      event: { id: `d${day}-${i}`, original: 'x'.repeat(1000) },
    })) as GatewatchEvent[];
    store.addEvents(events);
  }
}

const config = loadConfig({ env: {} }).retention;

describe('embedded retention', () => {
  it('deletes what is past retention, counted back from the newest event, keeps incidents longer, and gives the space back', async () => {
    const path = tempFile();
    const store = new EmbeddedStore(path);
    fill(store);
    const at = (d: number) => new Date(NEWEST - d * DAY).toISOString();
    const writer = store.incidentStore();
    await writer.create(makeIncident(1, { window: { start: at(45), end: at(45) }, updated_at: at(45) }));
    await writer.create(
      makeIncident(2, { status: 'resolved', updated_at: at(400), window: { start: at(400), end: at(400) } }),
    );
    await writer.create(
      makeIncident(3, { status: 'triaged', updated_at: at(400), window: { start: at(400), end: at(400) } }),
    );
    store.addDeadLetter('old', 'edge', 'x', 'old line', NEWEST - 40 * DAY);
    store.addDeadLetter('new', 'edge', 'x', 'new line', NEWEST - DAY);
    store.setJson(INVENTORY_KEY, {
      version: 1,
      endpoints: [
        { id: 'old', last_seen: at(200) },
        { id: 'new', last_seen: at(1) },
      ],
    });
    store.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    const sizeBefore = statSync(path).size;
    // Years later by the clock: ages still count back from the file's newest event.
    const result = applyEmbeddedRetention(store, config, NEWEST + 3 * 365 * DAY);
    expect(result.reference).toBe(NEWEST);
    expect(result.errors).toEqual([]);
    expect(result.deleted_documents).toEqual({
      events: 29 * 400 + 400 - 1,
      deadLetters: 1,
      incidents: 1,
      inventory: 1,
    });
    expect(store.eventCount()).toBe(60 * 400 - result.deleted_documents.events);
    expect(store.timeBounds()!.min).toBeGreaterThanOrEqual(NEWEST - 30 * DAY);
    expect(store.incidents().map((i) => i.id)).toEqual(['inc-0000001', 'inc-0000003']);
    expect(store.deadLetterCount()).toBe(1);
    expect(store.getJson<{ endpoints: { id: string }[] }>(INVENTORY_KEY)!.endpoints.map((e) => e.id)).toEqual(
      ['new'],
    );
    // The file made by this version hands its free pages back at once.
    expect(result.reclaimed).toBe('incremental');
    expect(result.bytes_after).toBeLessThan(result.bytes_before * 0.6);
    expect(statSync(path).size).toBeLessThan(sizeBefore * 0.6);
    expect(lastEmbeddedRetention(store)?.deleted_documents.events).toBe(result.deleted_documents.events);
    expect(formatEmbeddedRetention(result, config)).toMatch(
      /^Retention \(counted back from 2025-06-30T12:00:00\.000Z\): deleted 11999 events older than 30d, 1 dead letters older than 30d, 1 closed incidents older than 365d, 1 endpoints unseen for 180d; file [\d.]+ MB → [\d.]+ MB$/,
    );
    // A second pass finds nothing more.
    expect(applyEmbeddedRetention(store, config, NEWEST + 3 * 365 * DAY).deleted_documents).toEqual({
      events: 0,
      deadLetters: 0,
      incidents: 0,
      inventory: 0,
    });
    store.close();
  });

  it('vacuums a file made before auto_vacuum once enough of it is free', () => {
    const path = tempFile();
    // A file as an earlier version made it: no auto_vacuum.
    const db = new DatabaseSync(path);
    db.exec('PRAGMA page_size = 65536; PRAGMA auto_vacuum = NONE;');
    db.exec('CREATE TABLE events (id TEXT NOT NULL, ts INTEGER NOT NULL, doc TEXT NOT NULL)');
    db.close();
    const store = new EmbeddedStore(path);
    expect(
      Number((store.db.prepare('PRAGMA auto_vacuum').get() as { auto_vacuum: number }).auto_vacuum),
    ).toBe(0);
    fill(store);
    const result = applyEmbeddedRetention(store, config, NEWEST);
    expect(result.reclaimed).toBe('vacuum');
    expect(result.bytes_after).toBeLessThan(result.bytes_before * 0.6);
    // From then on it is incremental.
    expect(
      Number((store.db.prepare('PRAGMA auto_vacuum').get() as { auto_vacuum: number }).auto_vacuum),
    ).toBe(2);
    store.close();
  });
});
