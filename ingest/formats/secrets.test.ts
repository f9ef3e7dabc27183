/**
 * Secrets the formats carry in places their parsers do not read: request and response bodies,
 * WAF messages quoting them, response cookies, tokens in URL paths. Whatever a format keeps of
 * them (event.original, gatewatch.extra, url.*), nothing of the secret may remain, while the
 * detection-relevant fields stay.
 */
import { describe, expect, it } from 'vitest';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { normalizeLine } from '../transforms/normalize.ts';
import { testContext } from './testing/helpers.ts';

/** Every way a secret may appear in stored JSON: as is, JSON-escaped, URL-encoded (both ways). */
function forms(secret: string): string[] {
  return [
    secret,
    JSON.stringify(secret).slice(1, -1),
    encodeURIComponent(secret),
    encodeURIComponent(secret).replace(/%20/g, '+'),
  ];
}

function expectNoSecret(result: unknown, secrets: string[]): void {
  const text = JSON.stringify(result);
  for (const secret of secrets) for (const f of forms(secret)) expect(text, f).not.toContain(f);
}

function one(line: string, format?: string): GatewatchEvent {
  const r = normalizeLine(line, testContext(format ? { format } : {}));
  if (!r.ok) throw new Error(r.reason);
  expect(r.events).toHaveLength(1);
  return r.events[0]!;
}

const CRS = {
  file: '/usr/share/modsecurity-crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf',
  ver: 'OWASP_CRS/3.3.4',
};

describe('ModSecurity/Coraza audit logs: request bodies and the CRS messages quoting them (issue 18.1)', () => {
  it('v3: a form-body password, as sent and as the CRS quotes it in Matched Data and match', () => {
    const password = "' or 1=1-- Pa55w0rd!";
    const line = JSON.stringify({
      transaction: {
        client_ip: '198.51.100.23',
        time_stamp: 'Fri Jan  5 10:00:00 2024',
        server_id: 'a1b2',
        client_port: 51000,
        host_ip: '10.0.0.2',
        host_port: 443,
        unique_id: '170444880099.123456',
        request: {
          method: 'POST',
          http_version: 1.1,
          uri: '/login',
          headers: { Host: 'shop.example', 'Content-Type': 'application/x-www-form-urlencoded' },
          body: `username=alice&password=${encodeURIComponent(password).replace(/%20/g, '+')}`,
        },
        response: { http_code: 403, headers: { 'Content-Type': 'text/html' } },
        producer: { modsecurity: 'ModSecurity v3.0.9 (Linux)', connector: 'ModSecurity-nginx v1.0.3' },
        messages: [
          {
            message: 'SQL Injection Attack Detected via libinjection',
            details: {
              match: `Matched "Operator \`DetectSQLi' with parameter \`' against variable \`ARGS:password' (Value: \`${password}' )`,
              reference: 'v44,38',
              ruleId: '942100',
              file: CRS.file,
              lineNumber: '45',
              data: `Matched Data: s&1c found within ARGS:password: ${password}`,
              severity: '2',
              ver: CRS.ver,
              tags: ['application-multi', 'attack-sqli', 'paranoia-level/1'],
            },
          },
        ],
      },
    });
    const event = one(line);
    expectNoSecret(event, [password, 'Pa55w0rd!']);
    expect(event.rule?.id).toBe('942100');
    expect(event.gatewatch?.waf?.action).toBe('block');
    const messages = event.gatewatch?.extra?.messages as { data?: string }[];
    expect(messages[0]!.data).toBe('Matched Data: [REDACTED] found within ARGS:password: [REDACTED]');
    expect(event.event?.original).toContain('username=alice&password=[REDACTED]');
  });

  it('v3: a JSON body (ARGS:json.*) and a multipart body (Coraza)', () => {
    const jsonPass = 'J50n-b0dy-Pa55';
    const multiPass = 'Mult1part-Pa55';
    const v3 = JSON.stringify({
      transaction: {
        client_ip: '198.51.100.24',
        time_stamp: 'Fri Jan  5 10:00:01 2024',
        unique_id: '170444880100.1',
        request: {
          method: 'POST',
          http_version: 1.1,
          uri: '/api/session',
          headers: { Host: 'api.example', 'Content-Type': 'application/json' },
          body: JSON.stringify({ user: 'alice', password: jsonPass }),
        },
        response: { http_code: 200, headers: {} },
        messages: [
          {
            message: 'Possible SQL injection',
            details: {
              ruleId: '942200',
              data: `Matched Data: -b0dy- found within ARGS:json.password: ${jsonPass}`,
              severity: '2',
              tags: ['attack-sqli'],
            },
          },
        ],
      },
    });
    const coraza = JSON.stringify({
      transaction: {
        timestamp: '2024/01/05 10:00:02',
        unix_timestamp: 1704448802000000000,
        id: 'cz-1',
        client_ip: '198.51.100.25',
        client_port: 40000,
        host_ip: '10.0.0.2',
        host_port: 80,
        request: {
          method: 'POST',
          uri: '/signup',
          http_version: '1.1',
          headers: { 'content-type': ['multipart/form-data; boundary=xYz'] },
          body: `--xYz\r\nContent-Disposition: form-data; name="email"\r\n\r\ncarol@example.com\r\n--xYz\r\nContent-Disposition: form-data; name="password"\r\n\r\n${multiPass}\r\n--xYz--\r\n`,
        },
        response: { status: 200 },
        producer: { connector: 'coraza-caddy', rule_engine: 'On' },
      },
      messages: [
        {
          message: 'Attack detected',
          data: {
            id: 941100,
            msg: 'XSS',
            data: `Matched Data: 1part found within ARGS_POST:password: ${multiPass}`,
            severity: 2,
          },
        },
      ],
    });
    const a = one(v3);
    expectNoSecret(a, [jsonPass]);
    expect(a.rule?.id).toBe('942200');
    const b = one(coraza);
    expectNoSecret(b, [multiPass]);
    expect(b.event?.original).toContain('carol@example.com');
    expect(b.observer?.product).toBe('Coraza');
  });

  it('v2: a body logged as chunks and the message strings', () => {
    const password = 'V2-b0dy-Pa55word';
    const line = JSON.stringify({
      transaction: {
        time: '05/Jan/2024:10:00:03.000000 +0000',
        transaction_id: 'ZZfZYH8AAQEAAB2sAAAAAB',
        remote_address: '198.51.100.26',
        remote_port: 40100,
        local_address: '10.0.0.3',
        local_port: 80,
      },
      request: {
        request_line: 'POST /login.php HTTP/1.1',
        headers: { Host: 'www.example.com', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: [`username=bob&password=${password}&remember=1`],
      },
      response: { protocol: 'HTTP/1.1', status: 403, headers: {} },
      audit_data: {
        messages: [
          `Warning. Matched phrase "b0dy" at ARGS:password. [file "${CRS.file}"] [line "65"] [id "942100"] [msg "SQL Injection Attack Detected via libinjection"] [data "Matched Data: b0dy found within ARGS:password: ${password}"] [severity "CRITICAL"] [tag "attack-sqli"]`,
        ],
        action: { intercepted: true, phase: 2 },
      },
    });
    const event = one(line);
    expectNoSecret(event, [password, 'b0dy']);
    expect(event.rule?.id).toBe('942100');
    expect(event.event?.original).toContain('username=bob&password=[REDACTED]&remember=1');
  });
});

describe('Kong: response cookies (issue 18.3)', () => {
  it('scrubs Set-Cookie values, one cookie or several, as the request Cookie', () => {
    const line = JSON.stringify({
      request: {
        id: 'r-1',
        uri: '/v1/login',
        url: 'https://api.example.com/v1/login',
        method: 'POST',
        headers: { host: 'api.example.com', cookie: 'sid=reqC00kieValue1' },
        size: 300,
      },
      response: {
        status: 200,
        headers: {
          'content-type': 'application/json',
          'set-cookie': [
            'session=k0ngSetC00kie42; Path=/; HttpOnly; Secure',
            'refresh=k0ngRefresh77; Path=/auth',
          ],
        },
        size: 120,
      },
      latencies: { kong: 2, proxy: 20, request: 23 },
      client_ip: '203.0.113.40',
      started_at: 1704448800000,
      route: { name: 'login' },
      service: { name: 'auth' },
    });
    const event = one(line);
    expectNoSecret(event, ['k0ngSetC00kie42', 'k0ngRefresh77', 'reqC00kieValue1']);
    expect(event.event?.original).toContain('Path=/; HttpOnly; Secure');
    expect(event.http?.response?.status_code).toBe(200);
  });
});

describe('tokens in URL paths and bodies in formats that carry them (issue 18.5)', () => {
  const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jwt = `${b64url({ alg: 'RS256', kid: 'k1' })}.${b64url({ sub: 'user-7', iss: 'https://idp.example' })}.U2lnbmF0dXJlT2ZUaGVSZXNldFRva2VuMTIz`;

  it('scrubs a JWT used as a path segment from the URL, the original and the route', () => {
    const line = `203.0.113.9 - - [05/Jan/2024:10:00:00 +0000] "GET /password-reset/${jwt}/confirm HTTP/1.1" 200 512 "-" "Mozilla/5.0"`;
    const event = one(line, 'nginx.access');
    expectNoSecret(event, [jwt, jwt.slice(jwt.lastIndexOf('.') + 1)]);
    expect(event.url?.path).toBe('/password-reset/[REDACTED]/confirm');
    expect(event.http?.response?.status_code).toBe(200);
  });

  it('scrubs request and response bodies an nginx JSON log format carries', () => {
    const password = 'NgxB0dy-Pa55';
    const accessToken = 'at-resp0nse-b0dy-t0ken';
    const line = JSON.stringify({
      time: '2024-01-05T10:00:00+00:00',
      remote_addr: '203.0.113.12',
      request_id: 'f00d',
      method: 'POST',
      host: 'api.example.com',
      uri: '/v1/login',
      args: '',
      status: 200,
      body_bytes_sent: 80,
      request_time: 0.02,
      ua: 'okhttp/4.12.0',
      request_body: JSON.stringify({ username: 'dave', password }),
      form_body: `username=dave&password=${password}`,
      resp_body: JSON.stringify({ access_token: accessToken, token_type: 'Bearer' }),
    });
    const event = one(line, 'nginx.json');
    expectNoSecret(event, [password, accessToken]);
    expect(JSON.stringify(event.gatewatch?.extra)).toContain('dave');
  });
});
