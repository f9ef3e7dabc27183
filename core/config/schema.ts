/**
 * The Gatewatch configuration: one typed schema for every process (API, ingest workers,
 * detection workers, the embedded replay). Defaults live here; README's configuration
 * reference is written from this file.
 */
import Type, { type Static } from 'typebox';

/** The embedded store file when the configuration names none (what `npm run demo` writes). */
export const DEFAULT_EMBEDDED_PATH = '.cache/gatewatch.sqlite';

const Duration = (description: string, def: string) =>
  Type.String({ pattern: '^[0-9]+(ms|s|m|h|d)$', default: def, description });

export const ElasticsearchConfigSchema = Type.Object(
  {
    url: Type.String({ default: 'http://127.0.0.1:9200', description: 'Elasticsearch URL.' }),
    username: Type.Optional(Type.String({ description: 'Basic auth user.' })),
    password: Type.Optional(Type.String({ description: 'Basic auth password.' })),
    apiKey: Type.Optional(Type.String({ description: 'Elasticsearch API key (base64).' })),
    indexPrefix: Type.String({
      pattern: '^[a-z0-9][a-z0-9_-]*$',
      default: 'gatewatch',
      description: 'Prefix of every index, template and alias Gatewatch creates.',
    }),
    requestTimeout: Duration('Per-request timeout.', '30s'),
    shards: Type.Integer({ minimum: 1, default: 1, description: 'Primary shards per index.' }),
    replicas: Type.Integer({ minimum: 0, default: 0, description: 'Replicas per index.' }),
  },
  { default: {} },
);

export const RedisConfigSchema = Type.Object(
  {
    url: Type.String({ default: 'redis://127.0.0.1:6379', description: 'Redis URL.' }),
    prefix: Type.String({
      pattern: '^[a-zA-Z0-9:_-]+$',
      default: 'gw',
      description: 'Key prefix for every BullMQ queue and Gatewatch key.',
    }),
    requireNoEviction: Type.Boolean({
      default: true,
      description: 'Refuse to start unless Redis has maxmemory-policy noeviction (BullMQ requirement).',
    }),
  },
  { default: {} },
);

export const SourceConfigSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9][a-z0-9_.-]*$',
      description: 'Source name, stored as gatewatch.source.name.',
    }),
    type: Type.Union([Type.Literal('file'), Type.Literal('http'), Type.Literal('syslog')], {
      description: 'file: tail paths; http: push endpoints; syslog: UDP/TCP listener.',
    }),
    format: Type.Optional(Type.String({ description: 'Fixed format id; absent: auto-detect per line.' })),
    tokens: Type.Array(Type.String({ minLength: 16 }), {
      default: [],
      description:
        'Tokens accepted by HTTP push endpoints for this source (Bearer, Basic password, Splunk, Firehose key).',
    }),
    paths: Type.Array(Type.String(), { default: [], description: 'File globs (file sources).' }),
    trustedProxies: Type.Optional(
      Type.Array(Type.String(), { description: 'Overrides ingest.trustedProxies.' }),
    ),
    fieldMap: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'Declarative field map (API Gateway, generic JSON).',
      }),
    ),
    auth: Type.Optional(
      Type.Object(
        {
          endpoints: Type.Optional(
            Type.Array(Type.String({ pattern: '^/' }), {
              description:
                'Extra authentication endpoints as path globs (`*` within a segment, `**` across), added to the built-in login/token/session/password-reset patterns.',
            }),
          ),
          endpointFailureStatus: Type.Optional(
            Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
              description:
                'Statuses that mean credentials refused on authentication endpoints (default 400, 401, 403, 422).',
            }),
          ),
          failureStatus: Type.Optional(
            Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
              description: 'Statuses that mean credentials refused elsewhere (default 401, 407).',
            }),
          ),
          successStatus: Type.Optional(
            Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
              description:
                'Statuses that mean credentials accepted (default every 2xx and 3xx; e.g. [200] for a form login that redirects on failure too).',
            }),
          ),
        },
        { additionalProperties: false, description: 'Authentication attempt semantics for this source.' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const IngestConfigSchema = Type.Object(
  {
    sources: Type.Array(SourceConfigSchema, { default: [], description: 'Configured ingest sources.' }),
    httpHost: Type.String({
      default: '127.0.0.1',
      description: 'Listen address of the HTTP push endpoints.',
    }),
    httpPort: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 8088,
      description: 'Port of the HTTP push endpoints.',
    }),
    maxBodyBytes: Type.Integer({
      minimum: 1024,
      default: 32 * 1024 * 1024,
      description: 'Largest accepted push body (after gunzip).',
    }),
    syslogPort: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 5514,
      description: 'Syslog UDP and TCP port.',
    }),
    syslogTlsPort: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 65535, description: 'Syslog over TLS port.' }),
    ),
    relpPort: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 65535,
        description:
          'RELP (reliable syslog, e.g. rsyslog omrelp) port for the syslog source: messages are acknowledged once queued.',
      }),
    ),
    relpTls: Type.Boolean({
      default: false,
      description: 'Serve RELP over TLS with syslogTlsCert and syslogTlsKey (rsyslog omrelp tls="on").',
    }),
    syslogTlsCert: Type.Optional(Type.String({ description: 'PEM certificate file for syslog TLS.' })),
    syslogTlsKey: Type.Optional(Type.String({ description: 'PEM key file for syslog TLS.' })),
    offsetsKey: Type.String({
      default: 'offsets',
      description: 'Redis hash (under the prefix) holding file offsets.',
    }),
    batchSize: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 500,
      description: 'Events per queue job.',
    }),
    highWaterMark: Type.Integer({
      minimum: 1,
      default: 2_000,
      description: 'Queued jobs above which sources push back (HTTP 429, paused reads).',
    }),
    keepOriginal: Type.Boolean({ default: true, description: 'Store the original line as event.original.' }),
    fingerprintSecret: Type.String({
      minLength: 16,
      default: 'gatewatch-dev-fingerprint-secret-change-me',
      description: 'HMAC secret for API key and token fingerprints. Set your own in production.',
    }),
    trustedProxies: Type.Array(Type.String(), {
      default: [],
      description: 'CIDRs whose X-Forwarded-For entries are trusted.',
    }),
    geoipDatabase: Type.Optional(
      Type.String({ description: 'Path to a MaxMind-format City/Country database.' }),
    ),
    asnDatabase: Type.Optional(Type.String({ description: 'Path to a MaxMind-format ASN database.' })),
    workerConcurrency: Type.Integer({
      minimum: 1,
      default: 2,
      description: 'Jobs processed at once per worker.',
    }),
    jobLock: Duration(
      'How long a worker holds a job before another may take it over (crash recovery time).',
      '30s',
    ),
  },
  { default: {} },
);

export const ApiConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'Listen address.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Listen port.' }),
    bodyLimit: Type.Integer({
      minimum: 1024,
      default: 10 * 1024 * 1024,
      description: 'Max request body bytes.',
    }),
    rateLimitPerMinute: Type.Integer({
      minimum: 1,
      default: 1200,
      description: 'Requests per key per minute.',
    }),
  },
  { default: {} },
);

export const DetectionsConfigSchema = Type.Object(
  {
    rulePaths: Type.Array(Type.String(), {
      default: ['detections/rules'],
      description: 'Rule files or directories loaded at start-up.',
    }),
    maxCatchUp: Duration('Largest time range one run covers when catching up.', '1h'),
    webhooks: Type.Array(
      Type.Object(
        {
          url: Type.String({ pattern: '^https?://', description: 'Webhook URL.' }),
          kind: Type.Union([Type.Literal('json'), Type.Literal('slack')], { default: 'json' }),
          minSeverity: Type.Union(
            [Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('critical')],
            { default: 'low' },
          ),
        },
        { additionalProperties: false },
      ),
      { default: [], description: 'Where new incidents are announced (generic JSON or Slack-compatible).' },
    ),
    foldWindow: Duration(
      'Detections on the entity of an open incident (its key, IP, user, route) within this span of it fold into that incident instead of opening another; 0s never folds.',
      '1h',
    ),
    leaseTime: Duration('How long a rule run holds its lease (a crashed run is retried after it).', '5m'),
    lists: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_-]*$' }), Type.Array(Type.String()), {
      default: {},
      description:
        "Values for named lists of the rule pack, replacing the pack's own (e.g. internal_networks: the CIDRs of your own services).",
    }),
    maxGroups: Type.Integer({
      minimum: 1,
      default: 100_000,
      description: 'Groups per run beyond which a rule is marked degraded.',
    }),
  },
  { default: {} },
);

export const EmbeddedConfigSchema = Type.Object(
  {
    path: Type.String({ default: DEFAULT_EMBEDDED_PATH, description: 'Embedded store database file.' }),
  },
  { default: {} },
);

export const ConfigSchema = Type.Object({
  logLevel: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'Log level.' },
  ),
  elasticsearch: ElasticsearchConfigSchema,
  redis: RedisConfigSchema,
  ingest: IngestConfigSchema,
  api: ApiConfigSchema,
  detections: DetectionsConfigSchema,
  embedded: EmbeddedConfigSchema,
});

export type GatewatchConfig = Static<typeof ConfigSchema>;
export type SourceConfig = Static<typeof SourceConfigSchema>;
