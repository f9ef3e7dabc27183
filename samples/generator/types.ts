/** Shared types of the scenario generator. */

export type FormatId = 'kong.http_log' | 'aws.alb' | 'aws.waf';

export const FORMAT_FILES: Record<FormatId, string> = {
  'kong.http_log': 'kong-http-log.ndjson',
  'aws.alb': 'aws-alb-www.log',
  'aws.waf': 'aws-waf-api.ndjson',
};

export interface Consumer {
  id: string;
  username: string;
  customId?: string;
}

/**
 * One request as the generator models it, before it is written in a log format. `tag` is
 * "benign:<kind>", "history:<kind>" or the id of the attack label that produced it.
 */
export interface Req {
  t: number;
  fmt: FormatId;
  ip: string;
  method: string;
  host: string;
  path: string;
  query?: string;
  /** HTTP status sent to the client (WAF lines: the custom response code, or 0). */
  status: number;
  ua: string;
  consumer?: Consumer;
  /** Credentials sent as `Authorization: Basic` (login, OAuth client credentials). */
  basic?: { user: string; password: string };
  apiKey?: { id: string; raw: string; in: 'header' | 'query' };
  /** Opaque session cookie of a signed-in browser or app user. */
  session?: string;
  bytesIn: number;
  bytesOut: number;
  latencyMs: number;
  /** AWS WAF record details (aws.waf lines). */
  waf?: {
    action: 'ALLOW' | 'BLOCK' | 'COUNT' | 'CAPTCHA';
    ruleId: string;
    ruleType: 'REGULAR' | 'RATE_BASED' | 'MANAGED_RULE_GROUP';
    labels: string[];
    country: string;
    conditionType?: string;
  };
  /** WAF verdict of an ALB with AWS WAF integration (aws.alb lines). */
  albWaf?: 'block' | 'allow';
  ja3?: string;
  contentType?: string;
  tag: string;
}

export type EntityKind = 'ip' | 'user' | 'api_key' | 'route' | 'asn' | 'network' | 'user_agent' | 'ja3';

/** Ground truth for one injected attack (or one benign near-threshold case). */
export interface Label {
  id: string;
  /** "attack": the rules listed must fire; "benign": they must not. */
  kind: 'attack' | 'benign';
  /** Rule ids this label is about. */
  rules: string[];
  title: string;
  description: string;
  /** The entity the incident is grouped by: field name as in the rule's group-by, and value. */
  entity: { field: string; value: string; kind: EntityKind };
  /** Other group-by fields of the rule with their expected values (e.g. the route of a WAF bypass). */
  group?: Record<string, string>;
  /**
   * Rules that may fire on this attack too, depending on what else happens at the time (a
   * route-level rule sees several concurrent stuffing runs at once): an incident of theirs that
   * matches is right, their silence is no miss.
   */
  optionalRules?: string[];
  /**
   * The entity per rule where a rule groups the same attack by something else (a distributed
   * stuffing run seen by its user agent, and by the route it hits).
   */
  ruleEntities?: Record<string, { field: string; value: string; kind: EntityKind }>;
  /** Time span of the injected traffic (ISO-8601). */
  start: string;
  end: string;
  /** Incidents expected per rule after suppression, when deterministic. */
  expectedIncidents?: Record<string, number>;
  /** Generated requests that belong to this label. */
  requests: number;
  /** Notes on how the traffic relates to each rule's threshold. */
  thresholds?: string;
}

export interface ScenarioLine {
  format: FormatId;
  line: string;
  /** Event time (ms), for ordering and tests. */
  t: number;
}

export interface Scenario {
  seed: number;
  start: string;
  end: string;
  /** Start of the sparse history that precedes the scenario (first-seen and baseline rules need it). */
  historyStart: string;
  lines: ScenarioLine[];
  labels: Label[];
  /** GeoIP City and ASN databases (MMDB) covering the scenario's address space. */
  databases: { city: Buffer; asn: Buffer };
  /** Fingerprint secret the labels' API key fingerprints were computed with. */
  fingerprintSecret: string;
}
