/**
 * The Gatewatch event: one API request as seen by a gateway or WAF, with Elastic Common
 * Schema (ECS) field names. This file is the single definition of an event; the TypeScript
 * type, the Elasticsearch index template and the rule language's field catalogue are all
 * derived from it (see ./catalogue.ts and ./mapping.ts).
 *
 * Conventions:
 * - `source.ip` is the real client, resolved from the socket peer and X-Forwarded-For
 *   against trusted proxies; the raw inputs stay in `gatewatch.client.*`.
 * - `event.duration` is in nanoseconds, as ECS says.
 * - Secrets never appear in clear: API keys and tokens are HMAC fingerprints in
 *   `gatewatch.api_key.fingerprint`; redacted header and parameter names are listed in
 *   `gatewatch.redacted`.
 * - Fields no format maps go under `gatewatch.extra` (a flattened field), never anywhere else:
 *   the index mapping is `dynamic: strict`.
 */
import Type, { type Static } from 'typebox';
import {
  boolean,
  date,
  double,
  flattened,
  geoPoint,
  group,
  integer,
  ip,
  keyword,
  keywordList,
  long,
} from './fields.ts';

const geo = group({
  country_iso_code: keyword('ISO 3166-1 alpha-2 country code.'),
  country_name: keyword('Country name.'),
  region_name: keyword('Region or state name.'),
  city_name: keyword('City name.'),
  location: geoPoint('Latitude and longitude.'),
});

const autonomousSystem = group({
  number: long('Autonomous system number.'),
  organization: group({ name: keyword('Organisation owning the AS.') }),
});

export const EventSchema = Type.Object({
  '@timestamp': date('When the request was received, UTC, millisecond precision.'),
  ...group({
    event: group({
      id: keyword('Deterministic id: a hash of source and original line, also the document _id.'),
      kind: keyword('ECS event.kind: "event" for requests, "alert" for WAF alert records.'),
      category: keywordList('ECS event.category, e.g. ["web", "network"].'),
      type: keywordList('ECS event.type, e.g. ["access"], ["denied"].'),
      outcome: keyword('success | failure | unknown, from the response status or WAF action.'),
      action: keyword('What happened, e.g. "request", "waf-block", "login".'),
      dataset: keyword('Format id, e.g. "aws.waf", "nginx.access", "kong.http_log".'),
      module: keyword('Product family, e.g. "aws", "nginx", "kong".'),
      duration: long('Request duration in nanoseconds.'),
      original: keyword('The original log line, kept as evidence (not indexed).', { indexed: false }),
      ingested: date('When Gatewatch indexed the event.'),
      severity: long('Severity given by the source, if any.'),
    }),
    source: group({
      ip: ip('Real client IP, resolved through trusted proxies.'),
      port: long('Client port.'),
      address: keyword('Client address as logged (IP or host name).'),
      geo,
      as: autonomousSystem,
    }),
    destination: group({
      ip: ip('Server IP.'),
      port: long('Server port.'),
      domain: keyword('Server host name.'),
    }),
    url: group({
      original: keyword('Request target as received (secrets redacted).', { ignoreAbove: 8191 }),
      domain: keyword('Host the request addressed.'),
      path: keyword('Path without query string.', { ignoreAbove: 4096 }),
      query: keyword('Query string without "?" (secrets redacted).', { ignoreAbove: 8191 }),
      scheme: keyword('http or https.'),
      port: long('Port in the URL.'),
    }),
    http: group({
      version: keyword('HTTP version, e.g. "1.1", "2".'),
      request: group({
        id: keyword('Request id from the gateway.'),
        method: keyword('Upper-case HTTP method.'),
        bytes: long('Request size in bytes.'),
        referrer: keyword('Referer header.'),
        mime_type: keyword('Request Content-Type.'),
      }),
      response: group({
        status_code: long('HTTP response status code.'),
        bytes: long('Response size in bytes.'),
        mime_type: keyword('Response Content-Type.'),
      }),
    }),
    user_agent: group({
      original: keyword('User-Agent header.'),
      name: keyword('Browser or client name.'),
      version: keyword('Client version.'),
      os: group({ name: keyword('Operating system name.'), version: keyword('OS version.') }),
      device: group({ name: keyword('Device name.') }),
    }),
    user: group({
      id: keyword('User id when the gateway knows it.'),
      name: keyword('User or account name (e.g. login name attempted).'),
    }),
    tls: group({
      version: keyword('TLS version, e.g. "1.3".'),
      cipher: keyword('Negotiated cipher.'),
      client: group({
        ja3: keyword('JA3 fingerprint of the client hello.'),
        ja4: keyword('JA4 fingerprint of the client hello.'),
      }),
    }),
    observer: group({
      vendor: keyword('Vendor of the gateway or WAF.'),
      product: keyword('Product name.'),
      type: keyword('"api-gateway", "waf", "proxy", "load-balancer", "cdn".'),
      name: keyword('Instance name (e.g. Web ACL, gateway id).'),
    }),
    rule: group({
      id: keyword('WAF rule id that matched.'),
      name: keyword('WAF rule name.'),
      ruleset: keyword('WAF rule group or ruleset.'),
    }),
    service: group({
      name: keyword('Upstream service or API name.'),
    }),
    gatewatch: group({
      route: keyword('Route template, e.g. "/users/{id}/orders/{id}".'),
      source: group({
        name: keyword('Configured ingest source that received the line.'),
        format: keyword('Format parser that read the line.'),
      }),
      ingest: group({
        batch: keyword(
          'The ingest batch that stored the event first: the one whose rule partials count it (docs/partials.md).',
          { indexed: false },
        ),
      }),
      client: group({
        peer_ip: ip('Socket peer IP (the nearest proxy).'),
        forwarded_for: keyword('Raw X-Forwarded-For header.'),
      }),
      api_key: group({
        id: keyword('API key id as the gateway names it (not secret).'),
        fingerprint: keyword(
          'Key identity: HMAC-SHA256 fingerprint of what identifies the key (the gateway credential id, else the raw key or token).',
        ),
        location: keyword('Where the key was sent: header, query, cookie, body.'),
        source: keyword(
          'Where the key identity came from: gateway (a credential the gateway authenticated), jwt, basic, header, query, cookie.',
        ),
        name: keyword(
          'Name the gateway knows the key by (consumer, credential id), shown beside the fingerprint.',
        ),
      }),
      consumer: keyword('Gateway consumer / application name.'),
      jwt: group({
        sub: keyword('JWT subject (claims read without verification).'),
        iss: keyword('JWT issuer.'),
        client_id: keyword('JWT client id / azp.'),
      }),
      auth: group({
        present: boolean('Whether the request carried credentials.'),
        scheme: keyword('bearer, basic, api-key, cookie, none.'),
        attempt: boolean(
          'An authentication attempt: the request carried credentials or addressed an authentication endpoint (login, token, OAuth, password reset, GraphQL login mutation).',
        ),
        endpoint: boolean('The route is an authentication endpoint.'),
        outcome: keyword(
          'Authentication outcome of an attempt from its status: success, failure or unknown.',
        ),
      }),
      upstream: group({
        status_code: long(
          'Status the upstream (backend) answered; absent when the gateway answered itself, e.g. a WAF block.',
        ),
      }),
      network: group({
        id: keyword(
          'Client network: "AS<number>" when the ASN is known, else the /24 (IPv4) or /48 (IPv6) prefix of source.ip.',
        ),
        kind: keyword('asn or prefix.'),
      }),
      resource: keyword(
        'The object or page a request read: the path plus its pagination parameters (page, offset, cursor, start, …) in a canonical order.',
        { ignoreAbove: 4096 },
      ),
      waf: group({
        action: keyword('allow | block | count | challenge | captcha | log.'),
        rule_ids: keywordList('All WAF rules that matched.'),
        attack_class: keyword('Attack class reported, e.g. sqli, xss.'),
      }),
      query_params: keywordList('Names of query parameters present.'),
      redacted: keywordList('Names of headers and parameters that were redacted.'),
      upstream_latency_ms: double('Upstream (backend) latency in milliseconds.'),
      sample: group({
        scenario: keyword('Scenario id for generated traffic.'),
        label: keyword('Ground-truth label of generated traffic.'),
      }),
      extra: flattened('Fields from the source that no format maps. Searchable as keywords.'),
    }),
    labels: flattened('Free-form labels set by the source configuration.'),
    tags: keywordList('Free-form tags.'),
    network: group({
      protocol: keyword('Application protocol, e.g. "http".'),
      bytes: long('Total bytes.'),
    }),
    host: group({ name: keyword('Host that wrote the log.') }),
    error: group({ message: keyword('Error the gateway reported.'), code: keyword('Error code.') }),
    process: group({ pid: integer('Process id of the logging process.') }),
  }).properties,
});

/** A normalised Gatewatch event. `@timestamp` and `event.id` are always set after ingest. */
export type GatewatchEvent = Static<typeof EventSchema>;
