/**
 * An in-memory ingest-administration port for API tests: the tests set the sources and dead
 * letters the routes should show. Detection and event search in tests use the real engine
 * (detections/api-adapters.ts); the real ingest port (ingest/admin.ts) reads what ingest
 * workers write.
 */
import type { DeadLetter, IngestAdminPort, SourceStatus } from '../ports.ts';

export class InMemoryIngestAdmin implements IngestAdminPort {
  readonly sourceList: SourceStatus[];
  readonly letters: DeadLetter[];

  constructor(sources: SourceStatus[] = [], letters: DeadLetter[] = []) {
    this.sourceList = sources;
    this.letters = letters;
  }

  async sources(): Promise<SourceStatus[]> {
    return this.sourceList;
  }

  async deadLetters(query: { source?: string; size: number; cursor?: string }) {
    const all = this.letters
      .filter((l) => !query.source || l.source === query.source)
      .sort((a, b) => b.at.localeCompare(a.at) || b.id.localeCompare(a.id));
    const offset = query.cursor ? Number(Buffer.from(query.cursor, 'base64url').toString('utf8')) || 0 : 0;
    const items = all.slice(offset, offset + query.size);
    const next =
      offset + query.size < all.length
        ? Buffer.from(String(offset + query.size)).toString('base64url')
        : null;
    return { items, next_cursor: next };
  }

  async replayDeadLetters(request: { ids?: string[]; source?: string }) {
    let replayed = 0;
    const now = new Date().toISOString();
    for (const l of this.letters) {
      const chosen = request.ids
        ? request.ids.includes(l.id)
        : l.source === request.source && l.replayed_at === null;
      if (!chosen) continue;
      l.replayed_at = now;
      replayed++;
    }
    return { replayed, failed: 0 };
  }
}
