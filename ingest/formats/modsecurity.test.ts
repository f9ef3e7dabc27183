import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample, one, sampleLines, testContext } from './testing/helpers.ts';

describe('ModSecurity/Coraza format: exact output', () => {
  it('modsecurity.audit sample line 1: exact normalised event', () => {
    expect(normalizeSample('modsecurity.audit', 1, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'alert',
            category: ['web', 'network'],
            type: ['access', 'denied'],
            action: 'waf-block',
            outcome: 'failure',
            module: 'modsecurity',
            severity: 2,
            dataset: 'modsecurity.audit',
            original:
              '{"transaction":{"time":"05/Jan/2024:10:00:01.123456 +0000","transaction_id":"ZZfZYH8AAQEAAB2sAAAAAA","remote_address":"198.51.100.90","remote_port":40022,"local_address":"10.0.0.3","local_port":80},"request":{"request_line":"POST /login.php HTTP/1.1","headers":{"Host":"www.example.com","User-Agent":"sqlmap/1.7.2#stable (https://sqlmap.org)","Content-Type":"application/x-www-form-urlencoded"}},"response":{"protocol":"HTTP/1.1","status":403,"headers":{"Content-Type":"text/html; charset=iso-8859-1"}},"audit_data":{"messages":["Warning. detected SQLi using libinjection with fingerprint \'s&sos\' [file \\"/usr/share/modsecurity-crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf\\"] [line \\"65\\"] [id \\"942100\\"] [msg \\"SQL Injection Attack Detected via libinjection\\"] [data \\"Matched Data: s&sos found within ARGS:user: admin\' or \'1\'=\'1\\"] [severity \\"CRITICAL\\"] [ver \\"OWASP_CRS/3.3.4\\"] [tag \\"application-multi\\"] [tag \\"attack-sqli\\"] [tag \\"paranoia-level/1\\"]","Access denied with code 403 (phase 2). Operator GE matched 5 at TX:anomaly_score. [file \\"/usr/share/modsecurity-crs/rules/REQUEST-949-BLOCKING-EVALUATION.conf\\"] [line \\"93\\"] [id \\"949110\\"] [msg \\"Inbound Anomaly Score Exceeded (Total Score: 5)\\"] [severity \\"CRITICAL\\"] [tag \\"anomaly-evaluation\\"]"],"error_messages":[],"action":{"intercepted":true,"phase":2,"message":"Operator GE matched 5 at TX:anomaly_score."},"stopwatch":{"p1":412,"p2":1893},"producer":["ModSecurity for Apache/2.9.7 (http://www.modsecurity.org/)","OWASP_CRS/3.3.4"],"server":"Apache","engine_mode":"ENABLED"}}',
            id: 'pnTnwQi5FQIAEjgJEJqxLH',
          },
          observer: {
            vendor: 'OWASP',
            product: 'ModSecurity',
            type: 'waf',
          },
          source: {
            ip: '198.51.100.90',
            address: '198.51.100.90',
            port: 40022,
          },
          destination: {
            ip: '10.0.0.3',
            port: 80,
          },
          http: {
            request: {
              id: 'ZZfZYH8AAQEAAB2sAAAAAA',
              mime_type: 'application/x-www-form-urlencoded',
              method: 'POST',
            },
            response: {
              status_code: 403,
              mime_type: 'text/html; charset=iso-8859-1',
            },
            version: '1.1',
          },
          user_agent: {
            original: 'sqlmap/1.7.2#stable (https://sqlmap.org)',
            name: 'sqlmap',
            version: '1.7.2',
          },
          rule: {
            id: '942100',
            name: 'SQL Injection Attack Detected via libinjection',
          },
          gatewatch: {
            waf: {
              action: 'block',
              rule_ids: ['942100', '949110'],
              attack_class: 'sqli',
            },
            extra: {
              messages: [
                {
                  id: '942100',
                  msg: 'SQL Injection Attack Detected via libinjection',
                  severity: 2,
                  data: "Matched Data: s&sos found within ARGS:user: admin' or '1'='1",
                  tags: ['application-multi', 'attack-sqli', 'paranoia-level/1'],
                },
                {
                  id: '949110',
                  msg: 'Inbound Anomaly Score Exceeded (Total Score: 5)',
                  severity: 2,
                  tags: ['anomaly-evaluation'],
                },
              ],
              action: {
                intercepted: true,
                phase: 2,
                message: 'Operator GE matched 5 at TX:anomaly_score.',
              },
              engine_mode: 'ENABLED',
            },
            source: {
              format: 'modsecurity.audit',
              name: 'test',
            },
            client: {
              peer_ip: '198.51.100.90',
            },
            auth: {
              present: false,
              scheme: 'none',
            },
            route: '/login.php',
            resource: '/login.php',
            network: {
              id: '198.51.100.0/24',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:01.123Z',
          url: {
            original: '/login.php',
            path: '/login.php',
            domain: 'www.example.com',
          },
        },
      ],
      failures: [],
    });
  });
});

// samples/formats/modsecurity.audit.log lines 4-8 come from a live-fire range run (range/):
// libmodsecurity 3.0.9 with the nginx connector 1.0.3 and the CRS 3.3.4, JSON audit log, parts
// ABCFHZ (request body included), transaction id = nginx $request_id.
describe('ModSecurity v3 audit lines from the range', () => {
  const audit = sampleLines('modsecurity.audit');
  const ev = (line: string) => one(testContext({ format: 'modsecurity.audit' }), line, normalizeLine);

  it('a rule hit under DetectionOnly is logged, never a block, whatever the application answered', () => {
    const spray = ev(audit[4]!);
    expect(spray.gatewatch?.waf).toMatchObject({
      action: 'log',
      rule_ids: ['913100', '949110'],
      attack_class: 'scanner',
    });
    expect(spray.user?.name).toBe('dferreira1');
    // the same transaction, had the application itself answered 403
    const app403 = ev(audit[4]!.replace('"http_code":401', '"http_code":403'));
    expect(app403.gatewatch?.waf?.action).toBe('log');
    expect(app403.event?.action).toBe('waf-log');
  });

  it('a CRS block under the enforcing engine: action, rules, class, request id', () => {
    const e = ev(audit[5]!);
    expect(e.gatewatch?.waf?.action).toBe('block');
    expect(e.gatewatch?.waf?.rule_ids).toContain('942100');
    // sqlmap's heuristic probe carries traversal, shell, XSS and SQL payloads at once: the first
    // payload rule names the class, not the scanner-reputation rule 913100 listed before it
    expect(e.rule?.id).toBe('930100');
    expect(e.gatewatch?.waf?.attack_class).toBe('lfi');
    const tx = JSON.parse(audit[5]!) as { transaction: { messages: { details: { ruleId: string } }[] } };
    tx.transaction.messages = tx.transaction.messages.filter((m) =>
      ['913100', '942100', '949110'].includes(m.details.ruleId),
    );
    const sqli = ev(JSON.stringify(tx));
    expect(sqli.gatewatch?.waf?.attack_class).toBe('sqli');
    expect(sqli.rule?.id).toBe('942100');
    expect(e.http?.request?.id).toBe('8a93b73bc2ce489aee09bf5b71d30847');
    expect(e.http?.response?.status_code).toBe(403);
    expect(e.user_agent?.name).toBe('sqlmap');
  });

  it('a login body names the account and its password is scrubbed (form and JSON bodies)', () => {
    const form = ev(audit[6]!);
    expect(form.user?.name).toBe('wen.evans@example.org');
    expect(form.gatewatch?.redacted).toEqual(['password']);
    expect(form.event?.original).not.toContain('Harborharbo7446');
    expect(form.event?.original).toContain('password=[REDACTED]');
    const json = ev(audit[7]!);
    expect(json.user?.name).toBe('sarak95');
    expect(json.event?.original).not.toContain('hunter');
    expect(json.gatewatch?.waf).toBeUndefined();
    expect(json.http?.response?.status_code).toBe(401);
  });

  it('splits the Host header into domain and port; reads a bearer token without keeping it', () => {
    const e = ev(audit[8]!);
    expect(e.url).toMatchObject({ domain: '127.0.0.1', port: 45091, path: '/api/users/1/addresses' });
    expect(e.gatewatch?.jwt?.sub).toBeDefined();
    expect(e.event?.original).not.toMatch(/Bearer eyJ/);
  });
});
