/**
 * The kinds of entity an incident names (the roles of a rule's `entities` clause): the things an
 * analyst triages — a client address, an account, an API key, a route, a network (an ASN or an
 * address prefix), a country, a client program. Apart from incident.ts so that the rule
 * language checks roles without loading TypeBox (`gatewatch rules validate` starts fast).
 */
export const ENTITY_ROLES = [
  'ip',
  'user',
  'api_key',
  'route',
  'asn',
  'network',
  'country',
  'user_agent',
  'ja3',
] as const;
export type EntityRole = (typeof ENTITY_ROLES)[number];
