/**
 * Incidents in memory, for what is computed but never stored: rule previews (backtests) show
 * the incidents a rule would open, after its suppression and folding, from the same writer.
 */
import type { Incident } from '../../core/schema/incident.ts';
import { suppressionKeyOf } from '../engine/types.ts';
import type { IncidentStore } from './writer.ts';

export class MemoryIncidentStore implements IncidentStore {
  private readonly byId = new Map<string, { incident: Incident; version: number }>();

  all(): Incident[] {
    return [...this.byId.values()]
      .map((x) => x.incident)
      .sort((a, b) =>
        a.window.start < b.window.start ? -1 : a.window.start > b.window.start ? 1 : a.id < b.id ? -1 : 1,
      );
  }

  async get(id: string) {
    const x = this.byId.get(id);
    return x ? { incident: structuredClone(x.incident), version: String(x.version) } : undefined;
  }

  async findByDetectionId(detectionId: string) {
    for (const { incident } of this.byId.values())
      if (incident.detection_ids.includes(detectionId)) return incident;
    return undefined;
  }

  async findSuppressing(found: Incident, statuses: string[], since: string) {
    const key = suppressionKeyOf(found.rule.id, found.suppression_key!);
    return this.all().filter(
      (i) =>
        i.id !== found.id &&
        statuses.includes(i.status) &&
        i.last_seen > since &&
        (i.suppression_keys.includes(key) ||
          (i.rule.id === found.rule.id && i.suppression_key === found.suppression_key)),
    );
  }

  async findFolding(entity: string, keys: string[], statuses: string[], from: string, to: string) {
    const colon = entity.indexOf(':');
    const role = entity.slice(0, colon) as keyof Incident['entities'];
    const value = entity.slice(colon + 1);
    return this.all()
      .filter(
        (i) =>
          statuses.includes(i.status) &&
          i.last_seen >= from &&
          i.first_seen <= to &&
          ((i.entity_key !== null && keys.includes(i.entity_key)) ||
            (i.entities[role] ?? []).includes(value)),
      )
      .sort((a, b) => (a.last_seen > b.last_seen ? -1 : 1))
      .slice(0, 20);
  }

  async create(incident: Incident): Promise<'created' | 'exists'> {
    if (this.byId.has(incident.id)) return 'exists';
    this.byId.set(incident.id, { incident: structuredClone(incident), version: 0 });
    return 'created';
  }

  async update(id: string, patch: Partial<Incident>, version: string): Promise<'ok' | 'conflict'> {
    const x = this.byId.get(id);
    if (!x || String(x.version) !== version) return 'conflict';
    this.byId.set(id, { incident: { ...x.incident, ...structuredClone(patch) }, version: x.version + 1 });
    return 'ok';
  }
}

/** The incidents `incidents` (one rule's detections) would open, after suppression and folding. */
export async function previewIncidents(
  incidents: Incident[],
  options: { suppressMs?: number; foldWindowMs?: number },
): Promise<Incident[]> {
  const store = new MemoryIncidentStore();
  const { writeIncidents } = await import('./writer.ts');
  await writeIncidents(store, incidents, {
    ...(options.suppressMs !== undefined ? { suppression: { periodMs: options.suppressMs } } : {}),
    ...(options.foldWindowMs !== undefined ? { foldWindowMs: options.foldWindowMs } : {}),
  });
  return store.all();
}
