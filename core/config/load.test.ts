import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, durationMs, loadConfig } from './load.ts';

function file(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
  const path = join(dir, 'gatewatch.yaml');
  writeFileSync(path, content);
  return path;
}

describe('configuration', () => {
  it('fills every default when nothing is given', () => {
    const config = loadConfig({ env: {} });
    expect(config.api.port).toBe(8080);
    expect(config.redis.prefix).toBe('gw');
    expect(config.elasticsearch.indexPrefix).toBe('gatewatch');
    expect(config.ingest.trustedProxies).toEqual([]);
  });

  it('has no fingerprint secret unless one is set; an empty environment value counts as unset', () => {
    expect(loadConfig({ env: {} }).ingest.fingerprintSecret).toBeUndefined();
    expect(
      loadConfig({ env: { GATEWATCH_INGEST__FINGERPRINT_SECRET: '' } }).ingest.fingerprintSecret,
    ).toBeUndefined();
    const secret = 'x'.repeat(32);
    expect(
      loadConfig({ env: { GATEWATCH_INGEST__FINGERPRINT_SECRET: secret } }).ingest.fingerprintSecret,
    ).toBe(secret);
    expect(() => loadConfig({ env: { GATEWATCH_INGEST__FINGERPRINT_SECRET: 'short' } })).toThrow(
      /ingest\.fingerprintSecret: expected string at least 16 characters/,
    );
  });

  it('reads a YAML file and lets environment variables override it', () => {
    const path = file('api:\n  port: 9000\nelasticsearch:\n  url: http://es.internal:9200\n');
    const config = loadConfig({
      env: {
        GATEWATCH_CONFIG: path,
        REDIS_URL: 'redis://cache:6380',
        GATEWATCH_API__PORT: '9100',
        GATEWATCH_INGEST__TRUSTED_PROXIES: '10.0.0.0/8, 192.168.0.0/16',
        GATEWATCH_INGEST__KEEP_ORIGINAL: 'false',
      },
    });
    expect(config.api.port).toBe(9100);
    expect(config.elasticsearch.url).toBe('http://es.internal:9200');
    expect(config.redis.url).toBe('redis://cache:6380');
    expect(config.ingest.trustedProxies).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
    expect(config.ingest.keepOriginal).toBe(false);
  });

  it('stops with one message naming the key, the expectation and the origin', () => {
    expect(() => loadConfig({ env: { GATEWATCH_API__PORT: 'eighty' } })).toThrow(
      new ConfigError(
        'config: api.port: expected integer >= 0 <= 65535 (Listen port), got "eighty" (from environment variable GATEWATCH_API__PORT)',
      ),
    );
    const path = file('logLevel: loud\n');
    expect(() => loadConfig({ env: {}, file: path })).toThrow(
      /^config: logLevel: expected one of "fatal", .*got "loud" \(from file .*gatewatch.yaml\)$/,
    );
  });

  it('rejects unknown keys and unknown environment variables instead of ignoring them', () => {
    expect(() => loadConfig({ env: {}, file: file('api:\n  prot: 80\n') })).toThrow(
      'config: unknown key api.prot',
    );
    expect(() => loadConfig({ env: { GATEWATCH_API__PROT: '80' } })).toThrow(
      /GATEWATCH_API__PROT names no configuration key/,
    );
  });

  it('requires a certificate and key when syslog or RELP TLS is on, naming the key', () => {
    expect(() => loadConfig({ env: {}, overrides: { ingest: { relpTls: true } } })).toThrow(
      'config: ingest.syslogTlsCert: required by ingest.relpTls (a PEM file path)',
    );
    expect(() =>
      loadConfig({
        env: {},
        overrides: { ingest: { syslogTlsPort: 6514, syslogTlsCert: '/etc/gw/cert.pem' } },
      }),
    ).toThrow('config: ingest.syslogTlsKey: required by ingest.syslogTlsPort (a PEM file path)');
    const ok = loadConfig({
      env: {},
      overrides: { ingest: { relpTls: true, syslogTlsCert: '/c.pem', syslogTlsKey: '/k.pem' } },
    });
    expect(ok.ingest.relpTls).toBe(true);
    expect(loadConfig({ env: {} }).ingest.relpTls).toBe(false);
  });

  it('takes JSON for structured keys from the environment (how containers configure sources)', () => {
    const config = loadConfig({
      env: {
        GATEWATCH_INGEST__SOURCES:
          '[{"name":"gateway","type":"http","tokens":["a-token-of-16-chars+"]},{"name":"syslog","type":"syslog"}]',
        GATEWATCH_INGEST__TRUSTED_PROXIES: '10.0.0.0/8, 192.168.0.0/16',
      },
    });
    expect(config.ingest.sources.map((s) => [s.name, s.type, s.tokens])).toEqual([
      ['gateway', 'http', ['a-token-of-16-chars+']],
      ['syslog', 'syslog', []],
    ]);
    // plain lists stay comma-separated
    expect(config.ingest.trustedProxies).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
    expect(() => loadConfig({ env: { GATEWATCH_INGEST__SOURCES: 'gateway,http' } })).toThrow(
      /^config: ingest\.sources: environment variable GATEWATCH_INGEST__SOURCES must hold JSON \(a list of objects\): /,
    );
    expect(() =>
      loadConfig({ env: { GATEWATCH_INGEST__SOURCES: '[{"name":"gateway","type":"ftp"}]' } }),
    ).toThrow(
      'config: ingest.sources.0.type: expected one of "file", "http", "syslog", "s3", "cloudwatch", "kafka", "azure-blob" (file: tail paths; http: push endpoints; syslog: UDP/TCP listener; s3, cloudwatch, kafka, azure-blob: pull (settings in the block of that name)), got "ftp" (from environment variable GATEWATCH_INGEST__SOURCES)',
    );
  });

  it('rejects an unreadable or malformed file clearly', () => {
    expect(() => loadConfig({ env: {}, file: '/nonexistent/gw.yaml' })).toThrow(
      /cannot read configuration file/,
    );
    expect(() => loadConfig({ env: {}, file: file('api: [unclosed\n') })).toThrow(/is not valid YAML/);
  });

  it('parses durations', () => {
    expect(durationMs('250ms')).toBe(250);
    expect(durationMs('5m')).toBe(300_000);
    expect(durationMs('7d')).toBe(604_800_000);
    expect(() => durationMs('5 minutes')).toThrow(ConfigError);
  });
});
