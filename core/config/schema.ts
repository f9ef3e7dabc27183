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

const ByteSize = (description: string, def: string) =>
  Type.String({ pattern: '^[0-9]+(b|kb|mb|gb|tb)$', default: def, description });

export const ElasticsearchConfigSchema = Type.Object(
  {
    url: Type.String({
      default: 'http://127.0.0.1:9200',
      description:
        'Elasticsearch URL; several nodes of one cluster separated by commas (requests are spread across them, and a node that goes away is left out until it answers again).',
    }),
    caFile: Type.Optional(
      Type.String({ description: 'PEM CA bundle that signed the cluster’s HTTPS certificates.' }),
    ),
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

/*
 * Pull sources: where Gatewatch fetches logs that cloud services write (ingest/sources/aws,
 * kafka.ts, azure-blob.ts). One block per source type, named after it; credentials come the
 * usual way for each cloud (environment, profile files, instance roles), not from here.
 */

/** Where a pull source starts the first time it runs (later runs continue from their checkpoints). */
const PullStart = Type.String({
  pattern: '^(beginning|now|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?)$',
  default: 'beginning',
  description: 'First run only: beginning, now, or an ISO-8601 date/time (objects or events from then on).',
});

const AwsClientSettings = {
  region: Type.Optional(Type.String({ description: 'AWS region (default: AWS_REGION / the profile).' })),
  endpoint: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description: 'Endpoint URL of an S3-compatible or emulated service (R2, MinIO, moto).',
    }),
  ),
  profile: Type.Optional(Type.String({ description: 'Named profile from the AWS shared config files.' })),
};

export const S3SourceSchema = Type.Object(
  {
    bucket: Type.Optional(
      Type.String({ description: 'Bucket to list (without queueUrl) or to accept events of.' }),
    ),
    prefix: Type.String({
      default: '',
      description: 'Key prefix to read (listing) or accept (notifications).',
    }),
    queueUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: "SQS queue receiving the bucket's event notifications (directly or through SNS).",
      }),
    ),
    ...AwsClientSettings,
    forcePathStyle: Type.Boolean({
      default: false,
      description: 'Path-style bucket URLs (MinIO, most emulators).',
    }),
    start: PullStart,
    pollInterval: Duration('Listing: time between two listings of the bucket.', '1m'),
    lookback: Duration(
      'Listing: date partitions this far before the previous listing are listed again (late deliveries).',
      '2h',
    ),
    visibilityTimeout: Duration(
      'Notifications: how long a received message stays hidden; extended while read.',
      '5m',
    ),
    maxReceiveCount: Type.Integer({
      minimum: 0,
      default: 5,
      description:
        'Notifications: receives after which a failing message is dead-lettered and deleted (0: never).',
    }),
    concurrency: Type.Integer({ minimum: 1, maximum: 32, default: 2, description: 'Objects read at once.' }),
  },
  { additionalProperties: false },
);

export const CloudWatchSourceSchema = Type.Object(
  {
    logGroups: Type.Array(Type.String(), { default: [], description: 'Log group names.' }),
    logGroupPrefix: Type.Optional(
      Type.String({ description: 'Also every log group whose name starts with this.' }),
    ),
    logStreamPrefix: Type.Optional(Type.String({ description: 'Only streams whose name starts with this.' })),
    filterPattern: Type.Optional(Type.String({ description: 'CloudWatch Logs filter pattern.' })),
    ...AwsClientSettings,
    start: PullStart,
    pollInterval: Duration('Time between two polls of every log group.', '30s'),
    latency: Duration(
      'Events newer than this are left for the next poll (CloudWatch Logs ingests with a delay).',
      '1m',
    ),
  },
  { additionalProperties: false },
);

export const KafkaSourceSchema = Type.Object(
  {
    brokers: Type.Array(Type.String({ pattern: '^[^:/]+:[0-9]+$' }), {
      minItems: 1,
      description: 'Bootstrap brokers, host:port.',
    }),
    topics: Type.Array(Type.String(), { default: [], description: 'Topic names.' }),
    topicPattern: Type.Optional(
      Type.String({ description: 'Also every topic whose name matches this regular expression.' }),
    ),
    groupId: Type.String({ default: 'gatewatch', description: 'Consumer group.' }),
    clientId: Type.String({ default: 'gatewatch', description: 'Client id sent to the brokers.' }),
    start: Type.Union([Type.Literal('earliest'), Type.Literal('latest')], {
      default: 'earliest',
      description: 'Where a group without committed offsets starts.',
    }),
    tls: Type.Boolean({ default: false, description: 'Connect with TLS.' }),
    tlsCaFile: Type.Optional(
      Type.String({ description: "PEM CA bundle that signed the brokers' certificates." }),
    ),
    tlsCertFile: Type.Optional(Type.String({ description: 'PEM client certificate (mutual TLS).' })),
    tlsKeyFile: Type.Optional(Type.String({ description: 'PEM client key (mutual TLS).' })),
    sasl: Type.Optional(
      Type.Object(
        {
          mechanism: Type.Union(
            [Type.Literal('plain'), Type.Literal('scram-sha-256'), Type.Literal('scram-sha-512')],
            { description: 'SASL mechanism.' },
          ),
          username: Type.String({ description: 'SASL user.' }),
          password: Type.String({ description: 'SASL password (never logged).' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const AzureBlobSourceSchema = Type.Object(
  {
    accountUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: 'https://<account>.blob.core.windows.net (a SAS token may follow as ?query).',
      }),
    ),
    connectionString: Type.Optional(
      Type.String({ description: 'Storage connection string (default: AZURE_STORAGE_CONNECTION_STRING).' }),
    ),
    containers: Type.Array(Type.String(), { default: [], description: 'Containers to read.' }),
    containerPrefix: Type.String({
      default: 'insights-logs-',
      description: 'Without containers: every container whose name starts with this.',
    }),
    prefix: Type.String({ default: '', description: 'Blob name prefix.' }),
    start: PullStart,
    pollInterval: Duration('Time between two listings.', '1m'),
    lookback: Duration('Date partitions this far before the previous listing are listed again.', '2h'),
    concurrency: Type.Integer({ minimum: 1, maximum: 32, default: 2, description: 'Blobs read at once.' }),
  },
  { additionalProperties: false },
);

export const SourceConfigSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9][a-z0-9_.-]*$',
      description: 'Source name, stored as gatewatch.source.name.',
    }),
    type: Type.Union(
      [
        Type.Literal('file'),
        Type.Literal('http'),
        Type.Literal('syslog'),
        Type.Literal('s3'),
        Type.Literal('cloudwatch'),
        Type.Literal('kafka'),
        Type.Literal('azure-blob'),
      ],
      {
        description:
          'file: tail paths; http: push endpoints; syslog: UDP/TCP listener; s3, cloudwatch, kafka, azure-blob: pull (settings in the block of that name).',
      },
    ),
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
    s3: Type.Optional(S3SourceSchema),
    cloudwatch: Type.Optional(CloudWatchSourceSchema),
    kafka: Type.Optional(KafkaSourceSchema),
    azureBlob: Type.Optional(AzureBlobSourceSchema),
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
    requestTimeout: Duration(
      'Longest time to receive a whole push body (slower ones are cut with 408 and retried by shippers).',
      '120s',
    ),
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
    syslogUdpReceiveBuffer: Type.Integer({
      minimum: 4096,
      default: 4 * 1024 * 1024,
      description:
        'UDP receive buffer asked for the syslog socket (bytes). The kernel caps it at net.core.rmem_max (a warning says so); datagrams beyond it are dropped by the kernel, counted and warned about.',
    }),
    spoolDir: Type.String({
      default: '.cache/spool',
      description:
        'Local disk buffer of sources without acknowledgement (plain syslog): records received while Redis is unavailable are kept here and queued once it is back, also after a restart.',
    }),
    spoolMaxBytes: Type.Integer({
      minimum: 1024 * 1024,
      default: 1024 * 1024 * 1024,
      description:
        'Largest size of the spool per source; beyond it TCP reading pauses and UDP drops (counted).',
    }),
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
    maxQueuedBytes: Type.Integer({
      minimum: 1024 * 1024,
      default: 512 * 1024 * 1024,
      description: 'Bytes of records queued and not yet stored above which sources push back.',
    }),
    maxRedisMemory: Type.Integer({
      minimum: 0,
      default: 0,
      description:
        "Redis memory (used_memory, bytes) above which sources push back; 0: 80 % of Redis's maxmemory when set, else 4 GiB.",
    }),
    keepOriginal: Type.Boolean({ default: true, description: 'Store the original line as event.original.' }),
    fingerprintSecret: Type.Optional(
      Type.String({
        minLength: 16,
        description:
          'HMAC secret for API key and token fingerprints, scrubbed secrets and event ids. No default: when unset, a distributed deployment creates one and keeps it in Elasticsearch (<prefix>-settings), the embedded mode one per SQLite file.',
      }),
    ),
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
    unauthenticatedPerMinute: Type.Integer({
      minimum: 1,
      default: 60,
      description:
        'Requests with a key that does not verify, per client address and minute; beyond, 429 without looking the key up.',
    }),
    requestTimeout: Duration(
      'Longest time to receive a whole request (slow bodies are cut with 408).',
      '30s',
    ),
    ruleCheckTimeout: Duration(
      'Time budget for checking rule text or a filter, or testing rules over supplied events.',
      '10s',
    ),
    previewTimeout: Duration('Time budget of one rule preview over stored events.', '60s'),
    previewConcurrency: Type.Integer({
      minimum: 1,
      default: 2,
      description: 'Rule previews run at once per API process (more wait briefly, then 503).',
    }),
    previewMaxGroups: Type.Integer({
      minimum: 1,
      default: 10_000,
      description:
        'Groups one preview reads before it stops and says so (degraded); a preview answers at most 1,000 incidents.',
    }),
    ruleWorkerMemoryMb: Type.Integer({
      minimum: 64,
      default: 512,
      description: 'Heap limit of each worker thread that checks, tests and previews rules (MB).',
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
    partials: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description:
            'Ingest workers fold stored events into the partials of threshold and baseline rules, and runs read them (docs/partials.md).',
        }),
        exactValues: Type.Integer({
          minimum: 1,
          default: 256,
          description:
            'Distinct values kept exactly per partial cell and field; past it a sketch (re-read raw when it matters).',
        }),
        compactAfter: Duration('Age past the end of a day chunk before its partials are compacted.', '2h'),
        sequenceStateBytes: Type.Integer({
          minimum: 0,
          default: 8_388_608,
          description:
            'Bytes (JSON) of the state a sequence rule keeps between scheduled runs; past it the next run reads its look-back raw.',
        }),
      },
      { default: {} },
    ),
  },
  { default: {} },
);

/*
 * How long each kind of data is kept, and the Elasticsearch index lifecycle that enforces it
 * (operations/lifecycle.ts): run by the workers, once per cluster under a lease in Redis.
 */
export const RetentionConfigSchema = Type.Object(
  {
    events: Duration('Events: their indices are deleted once their newest event is this old.', '30d'),
    deadLetters: Duration('Dead letters (records that did not become events).', '30d'),
    ruleRuns: Duration('Rule run records and lifecycle run records.', '30d'),
    incidents: Duration(
      'Incidents, kept longest: closed incidents not updated for this long are deleted; open ones stay. An incident outlives its events, and its evidence says when they expired.',
      '365d',
    ),
    inventory: Duration('API inventory endpoints not seen for this long (derived from events).', '180d'),
    audit: Duration('API audit log entries.', '365d'),
  },
  { default: {} },
);

export const LifecycleConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description: 'Workers run the index lifecycle and retention (once per cluster, leased in Redis).',
    }),
    interval: Duration('How often the lifecycle runs.', '15m'),
    rolloverAge: Duration(
      'An events index takes writes at most this long before the next one (each UTC day starts its own anyway).',
      '1d',
    ),
    shardSize: ByteSize(
      'Target primary shard size: an events index rolls over when a primary shard reaches it, and new indices get as many shards as the last day’s data needs at this size.',
      '30gb',
    ),
    maxShards: Type.Integer({
      minimum: 0,
      default: 0,
      description: 'Most primary shards of a new events index (0: the number of data nodes).',
    }),
    sealAfter: Duration(
      'Events indices no longer written to are made read-only and force-merged to one segment after this long.',
      '1h',
    ),
    diskCheckInterval: Duration(
      'How often each process reads the cluster’s health and disk use (disk watermarks, back-pressure).',
      '10s',
    ),
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
  retention: RetentionConfigSchema,
  lifecycle: LifecycleConfigSchema,
});

export type GatewatchConfig = Static<typeof ConfigSchema>;
export type SourceConfig = Static<typeof SourceConfigSchema>;
export type RetentionConfig = Static<typeof RetentionConfigSchema>;
export type LifecycleConfig = Static<typeof LifecycleConfigSchema>;
export type SourceType = SourceConfig['type'];
export type S3SourceConfig = Static<typeof S3SourceSchema>;
export type CloudWatchSourceConfig = Static<typeof CloudWatchSourceSchema>;
export type KafkaSourceConfig = Static<typeof KafkaSourceSchema>;
export type AzureBlobSourceConfig = Static<typeof AzureBlobSourceSchema>;
