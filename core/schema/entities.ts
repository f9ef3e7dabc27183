/**
 * Entities: the things incidents are about (an API key, a client IP, a user, a route, a
 * network) and the event fields that carry them. Rules name their own entity fields
 * (`incident { entities ip: source.ip }`); these are the canonical ones the built-in pack
 * uses, which entity pages and exceptions look events up by.
 */
import type { FilterExpr } from '../../parser/ir.ts';
import { kindOf, lookupField } from './catalogue.ts';
import { ENTITY_ROLES, type EntityRole } from './incident.ts';

/** The kinds of entity: the roles a rule's `entities` clause names (core/schema/incident.ts). */
export const ENTITY_TYPES = ENTITY_ROLES;
export type EntityType = EntityRole;

/** The event fields an entity of each type is found in (any of them). */
export const ENTITY_FIELDS: Record<EntityType, readonly string[]> = {
  ip: ['source.ip'],
  user: ['user.name', 'user.id'],
  api_key: ['gatewatch.api_key.fingerprint'],
  route: ['gatewatch.route'],
  asn: ['source.as.number'],
  network: ['gatewatch.network.id'],
  country: ['source.geo.country_iso_code'],
  user_agent: ['user_agent.original'],
  ja3: ['tls.client.ja3'],
};

/**
 * The filter (rule language IR) matching the events of one entity, or undefined when the
 * value cannot be one of that type (e.g. a non-numeric ASN).
 */
export function entityFilter(type: EntityType, value: string): FilterExpr | undefined {
  const args: FilterExpr[] = [];
  for (const field of ENTITY_FIELDS[type]) {
    const info = lookupField(field);
    const numeric = info !== undefined && kindOf(info.type) === 'number';
    if (numeric) {
      if (!/^-?\d+(\.\d+)?$/.test(value)) continue;
      args.push({ op: 'cmp', field, cmp: '==', value: Number(value) });
    } else {
      args.push({ op: 'cmp', field, cmp: '==', value });
    }
  }
  if (args.length === 0) return undefined;
  return args.length === 1 ? args[0]! : { op: 'or', args };
}

/** The same filter as rule-language text (shown to analysts, accepted by event search). */
export function entityFilterText(type: EntityType, value: string): string | undefined {
  const filter = entityFilter(type, value);
  if (!filter) return undefined;
  const one = (f: FilterExpr): string =>
    f.op === 'cmp' ? `${f.field} == ${typeof f.value === 'number' ? f.value : JSON.stringify(f.value)}` : '';
  return filter.op === 'or' ? filter.args.map(one).join(' or ') : one(filter);
}
