/**
 * The contract between log-format parsers and the rest of ingest.
 *
 * A format turns ONE record (a text line, or one JSON object) into a draft Gatewatch event
 * (ECS field names, see core/schema/event.ts) plus the raw request material that must not be
 * stored as such but that enrichment needs: headers, the socket peer, credentials. Parsing is
 * pure and never throws: bad input yields `{ ok: false, reason }`.
 */
import type { GatewatchEvent } from '../../core/schema/event.ts';

/** A partially built event. `@timestamp` is always set by a successful parse. */
export type EventDraft = Partial<GatewatchEvent>;

export type CredentialLocation = 'header' | 'query' | 'cookie' | 'body';

/** A secret the format found in a vendor field (e.g. API Gateway `$context.identity.apiKey`). */
export interface CredentialCandidate {
  /** Field or header name it came from (lower-case for headers). */
  name: string;
  value: string;
  location: CredentialLocation;
}

/**
 * Request material a format exposes to enrichment. Nothing here is stored: the enricher
 * derives `source.ip`, fingerprints and redactions from it.
 */
export interface RawRequest {
  /** Request headers the source logged, lower-case names; repeated headers joined with ", ". */
  headers?: Record<string, string>;
  /** The socket peer as logged (nearest proxy, or the client when there is none). */
  peerIp?: string;
  /** The raw X-Forwarded-For value as logged. */
  forwardedFor?: string;
  /** Raw Cookie header when the source logs cookies outside the header map (CloudFront). */
  cookies?: string;
  /** Secrets found in vendor-specific fields (raw API keys, tokens). */
  credentials?: CredentialCandidate[];
  /** Literal substrings of the original record that must be scrubbed (already encoded as logged). */
  secretsInOriginal?: string[];
  /**
   * Named values the source logged in clear next to the request (e.g. nginx `$http_x_api_key`
   * custom variables): redaction checks the names and scrubs sensitive ones from the original.
   */
  loggedValues?: Record<string, string>;
}

/** Declarative mapping for user-templated JSON logs: source key (dotted path) → target. */
export type FieldMap = Record<string, FieldMapTarget>;

/**
 * A target is an ECS field name (e.g. "source.ip", "http.response.status_code"), or one of the
 * special targets:
 * - "@timestamp" (any of ISO-8601, CLF time, epoch s/ms/µs/ns by magnitude),
 * - "@duration_ms" / "@duration_s" / "@duration_ns" / "@duration_us" → event.duration (ns),
 * - "@request_line" ("GET /path HTTP/1.1"), "@target" (path with query, or absolute URL),
 * - "@peer_ip", "@forwarded_for", "@header:<name>", "@credential:<header|query|cookie>:<name>",
 * - "@upstream_latency_ms" / "@upstream_latency_s" → gatewatch.upstream_latency_ms,
 * - "@upstream_status" → gatewatch.upstream.status_code: the last status of a retry list
 *   ("502, 200", "502 : 200"); nothing for "" or "-" (the gateway answered itself),
 * - "@ignore" (drop the key), "@extra" (explicitly keep under gatewatch.extra).
 * Unmapped keys go under `gatewatch.extra` unless the map says otherwise.
 */
export type FieldMapTarget = string;

/** Per-source options a format may read. */
export interface SourceOptions {
  /** Configured ingest source name. */
  name: string;
  /** Field map overrides for declarative formats (aws.apigateway, generic.json, nginx.json). */
  fieldMap?: FieldMap;
  /** Observer fields for the generic JSON format. */
  observer?: { vendor?: string; product?: string; type?: string; name?: string };
  /** Keep unmapped keys of declarative JSON formats under gatewatch.extra (default true). */
  keepUnmapped?: boolean;
}

export interface ParseContext {
  source: SourceOptions;
  /** The record, already parsed, when it is JSON (the registry parses each line once). */
  json?: unknown;
  /** Mutable per-source, per-format state (e.g. CloudFront `#Fields` order). */
  state: Map<string, unknown>;
  /** Receive time in ms since the epoch: fallback `@timestamp` when the record has none. */
  receivedAt: number;
}

export type ParseResult =
  | { ok: true; event: EventDraft; raw: RawRequest }
  /** `skip`: not an event but not an error either (header lines, comments). */
  | { ok: false; reason: string; skip?: boolean };

export interface Format {
  /** Format id, also `event.dataset`, e.g. "aws.waf". */
  readonly id: string;
  readonly description: string;
  /** Whether records are JSON objects (detect gets the parsed value), text lines, or either. */
  readonly kind: 'json' | 'text' | 'both';
  /**
   * Confidence 0..1 that the record is in this format. JSON formats look at `json` (already
   * parsed, never re-parse); text formats do cheap prefix checks on `line`.
   */
  detect(line: string, json?: unknown): number;
  parse(line: string, ctx: ParseContext): ParseResult;
}
