/**
 * Loads the configuration from a file (YAML or JSON) and environment variables, fills
 * defaults and validates. A bad value stops start-up with one message naming the key, what
 * was expected and where the value came from.
 *
 * Environment variables:
 *   GATEWATCH_CONFIG=path              configuration file
 *   ELASTICSEARCH_URL, REDIS_URL       the two servers (the names every tool uses)
 *   GATEWATCH_<SECTION>__<KEY>=value   any key, e.g. GATEWATCH_API__PORT=9000,
 *                                      GATEWATCH_INGEST__TRUSTED_PROXIES=10.0.0.0/8,192.168.0.0/16
 *                                      Keys holding objects or lists of objects take JSON, e.g.
 *                                      GATEWATCH_INGEST__SOURCES='[{"name":"edge","type":"http"}]'
 *                                      (containers are configured this way, without a file).
 *                                      An empty value counts as unset.
 */
import { readFileSync } from 'node:fs';
import Value from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema, type GatewatchConfig } from './schema.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = Record<string, unknown>;

const ENV_PREFIX = 'GATEWATCH_';

function camel(snake: string): string {
  return snake.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Walk the schema to find what type a dotted key expects, so env strings are coerced. */
function schemaAt(path: string[]): Record<string, unknown> | undefined {
  let node: Record<string, unknown> | undefined = ConfigSchema as unknown as Record<string, unknown>;
  for (const key of path) {
    if (node?.type === 'array' && /^[0-9]+$/.test(key)) {
      // an element of a list (an error's path into ingest.sources, for one)
      node = node.items as Record<string, unknown> | undefined;
      continue;
    }
    const props = node?.properties as Record<string, Record<string, unknown>> | undefined;
    node = props?.[key];
    if (!node) return undefined;
  }
  return node;
}

/** A key whose value is structured (an object, or a list of objects): set from JSON. */
function takesJson(schema: Record<string, unknown> | undefined): boolean {
  if (schema?.type === 'object') return true;
  const items = schema?.items as Record<string, unknown> | undefined;
  return schema?.type === 'array' && items?.type === 'object';
}

function coerce(raw: string, schema: Record<string, unknown> | undefined): unknown {
  const type = schema?.type;
  if (type === 'integer' || type === 'number') {
    const n = Number(raw);
    return raw.trim() === '' || Number.isNaN(n) ? raw : n;
  }
  if (type === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    return raw;
  }
  if (type === 'array') {
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }
  return raw;
}

function setPath(target: Json, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object') node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]!] = value;
}

export interface LoadConfigOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values applied last (CLI flags, tests). */
  overrides?: Json;
}

export function loadConfig(options: LoadConfigOptions = {}): GatewatchConfig {
  const env = options.env ?? process.env;
  const origins = new Map<string, string>();
  let raw: Json = {};

  const file = options.file ?? env.GATEWATCH_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `config: cannot read configuration file ${file}: ${(err as Error).message} (check --config or GATEWATCH_CONFIG)`,
      );
    }
    try {
      const parsed = parseYaml(text) as unknown;
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) {
          throw new Error('the top level must be a mapping of sections');
        }
        raw = parsed as Json;
      }
    } catch (err) {
      throw new ConfigError(`config: ${file} is not valid YAML/JSON: ${(err as Error).message}`);
    }
  }

  const fromEnv = (path: string[], value: string, name: string) => {
    const schema = schemaAt(path);
    if (takesJson(schema)) {
      try {
        setPath(raw, path, JSON.parse(value));
      } catch (err) {
        throw new ConfigError(
          `config: ${path.join('.')}: environment variable ${name} must hold JSON (${schema?.type === 'array' ? 'a list of objects' : 'an object'}): ${(err as Error).message}`,
        );
      }
    } else setPath(raw, path, coerce(value, schema));
    origins.set(`/${path.join('/')}`, `environment variable ${name}`);
  };
  if (env.ELASTICSEARCH_URL) fromEnv(['elasticsearch', 'url'], env.ELASTICSEARCH_URL, 'ELASTICSEARCH_URL');
  if (env.REDIS_URL) fromEnv(['redis', 'url'], env.REDIS_URL, 'REDIS_URL');
  for (const [name, value] of Object.entries(env)) {
    // An empty value is no value (compose's `${VAR:-}` passes unset variables on as empty ones).
    if (!name.startsWith(ENV_PREFIX) || name === 'GATEWATCH_CONFIG' || value === undefined || value === '')
      continue;
    const path = name.slice(ENV_PREFIX.length).split('__').map(camel);
    if (!schemaAt(path)) {
      throw new ConfigError(
        `config: environment variable ${name} names no configuration key (${path.join('.')})`,
      );
    }
    fromEnv(path, value, name);
  }
  if (options.overrides) {
    for (const [section, values] of Object.entries(options.overrides)) {
      if (values && typeof values === 'object' && !Array.isArray(values)) {
        for (const [k, v] of Object.entries(values)) setPath(raw, [section, k], v);
      } else setPath(raw, [section], values);
    }
  }

  const withDefaults = Value.Default(ConfigSchema, Value.Clone(raw)) as Json;
  const unknownKey = findUnknownKey(withDefaults, ConfigSchema as unknown as Json, []);
  if (unknownKey) {
    throw new ConfigError(`config: unknown key ${unknownKey}${file ? ` in ${file}` : ''}`);
  }
  const first = [...Value.Errors(ConfigSchema, withDefaults)][0];
  if (first) {
    const key = first.instancePath.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    const schema = schemaAt(first.instancePath.split('/').filter(Boolean));
    const expected = describeExpected(schema, first.message);
    const got = JSON.stringify(valueAt(withDefaults, first.instancePath));
    const origin = originOf(origins, first.instancePath) ?? (file ? `file ${file}` : 'defaults');
    throw new ConfigError(`config: ${key}: expected ${expected}, got ${got} (from ${origin})`);
  }
  const config = withDefaults as unknown as GatewatchConfig;
  checkTls(config);
  checkPullSources(config);
  return config;
}

/** Each pull source type needs its own settings block, and only that one. */
function checkPullSources(config: GatewatchConfig): void {
  const blocks = { s3: 's3', cloudwatch: 'cloudwatch', kafka: 'kafka', 'azure-blob': 'azureBlob' } as const;
  config.ingest.sources.forEach((source, i) => {
    const at = `ingest.sources[${i}]`;
    for (const [type, block] of Object.entries(blocks)) {
      if (source[block] !== undefined && source.type !== type)
        throw new ConfigError(
          `config: ${at}.${block}: only for sources of type ${type} (this one is ${source.type})`,
        );
    }
    if (source.type === 's3') {
      const s3 = source.s3;
      if (!s3?.bucket && !s3?.queueUrl)
        throw new ConfigError(
          `config: ${at}.s3: type s3 needs s3.bucket (listing) or s3.queueUrl (event notifications)`,
        );
    } else if (source.type === 'cloudwatch') {
      const cw = source.cloudwatch;
      if (!cw || (cw.logGroups.length === 0 && cw.logGroupPrefix === undefined))
        throw new ConfigError(
          `config: ${at}.cloudwatch: type cloudwatch needs cloudwatch.logGroups or cloudwatch.logGroupPrefix`,
        );
    } else if (source.type === 'kafka') {
      const kafka = source.kafka;
      if (!kafka)
        throw new ConfigError(
          `config: ${at}.kafka: type kafka needs kafka.brokers and kafka.topics or kafka.topicPattern`,
        );
      if (kafka.topics.length === 0 && kafka.topicPattern === undefined)
        throw new ConfigError(`config: ${at}.kafka: give kafka.topics or kafka.topicPattern`);
      if (kafka.topicPattern !== undefined) {
        try {
          new RegExp(kafka.topicPattern);
        } catch (err) {
          throw new ConfigError(
            `config: ${at}.kafka.topicPattern: not a regular expression: ${(err as Error).message}`,
          );
        }
      }
      if ((kafka.tlsCertFile === undefined) !== (kafka.tlsKeyFile === undefined))
        throw new ConfigError(`config: ${at}.kafka: tlsCertFile and tlsKeyFile go together (mutual TLS)`);
    } else if (source.type === 'azure-blob') {
      if (!source.azureBlob)
        throw new ConfigError(
          `config: ${at}.azureBlob: type azure-blob needs an azureBlob block (accountUrl or connectionString, containers)`,
        );
    }
  });
}

/** Settings that only make sense together: TLS listeners need a certificate and a key. */
function checkTls(config: GatewatchConfig): void {
  const { ingest } = config;
  const users = [
    ...(ingest.syslogTlsPort !== undefined ? ['ingest.syslogTlsPort'] : []),
    ...(ingest.relpTls ? ['ingest.relpTls'] : []),
  ];
  if (users.length === 0) return;
  for (const key of ['syslogTlsCert', 'syslogTlsKey'] as const) {
    if (ingest[key] === undefined)
      throw new ConfigError(`config: ingest.${key}: required by ${users.join(' and ')} (a PEM file path)`);
  }
}

/** Where a value came from: its own key's origin, or the nearest enclosing key's (JSON from env). */
function originOf(origins: Map<string, string>, pointer: string): string | undefined {
  for (let p = pointer; p !== ''; p = p.slice(0, p.lastIndexOf('/'))) {
    const origin = origins.get(p);
    if (origin) return origin;
  }
  return undefined;
}

function valueAt(obj: Json, pointer: string): unknown {
  let node: unknown = obj;
  for (const key of pointer.split('/').filter(Boolean)) node = (node as Json | undefined)?.[key];
  return node;
}

function describeExpected(schema: Record<string, unknown> | undefined, fallback: string): string {
  if (!schema) return fallback;
  const parts: string[] = [];
  if (schema.anyOf) {
    parts.push(
      `one of ${(schema.anyOf as { const: unknown }[]).map((s) => JSON.stringify(s.const)).join(', ')}`,
    );
  } else if (schema.type) parts.push(String(schema.type));
  if (schema.minimum !== undefined) parts.push(`>= ${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`<= ${schema.maximum}`);
  if (schema.minLength !== undefined) parts.push(`at least ${schema.minLength} characters`);
  if (schema.pattern !== undefined) parts.push(`matching ${schema.pattern}`);
  const described = parts.join(' ');
  return schema.description ? `${described} (${String(schema.description).replace(/\.$/, '')})` : described;
}

function findUnknownKey(value: Json, schema: Json, path: string[]): string | undefined {
  const props = schema.properties as Record<string, Json> | undefined;
  if (!props || value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  for (const [key, child] of Object.entries(value)) {
    const childSchema = props[key];
    if (!childSchema) return [...path, key].join('.');
    const nested = findUnknownKey(child as Json, childSchema, [...path, key]);
    if (nested) return nested;
  }
  return undefined;
}

/** Parse "512mb", "30gb", "1tb" (powers of 1024) into bytes. */
export function byteSize(text: string): number {
  const m = /^([0-9]+)(b|kb|mb|gb|tb)$/.exec(text);
  if (!m) throw new ConfigError(`config: "${text}" is not a size like 512mb, 30gb`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 }[
    m[2] as 'b' | 'kb' | 'mb' | 'gb' | 'tb'
  ];
  return Number(m[1]) * unit;
}

/** Parse "30s", "5m", "1h", "7d", "250ms" into milliseconds. */
export function durationMs(text: string): number {
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new ConfigError(`config: "${text}" is not a duration like 30s, 5m, 1h, 7d`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return n * unit;
}
