import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('Cloudflare format: exact output', () => {
  it('cloudflare.http_requests sample line 2: exact normalised event', () => {
    expect(normalizeSample('cloudflare.http_requests', 2, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web', 'network'],
            type: ['access', 'denied'],
            action: 'request',
            outcome: 'failure',
            module: 'cloudflare',
            duration: 0,
            dataset: 'cloudflare.http_requests',
            original:
              '{"ClientIP":"198.51.100.88","ClientCountry":"XX","ClientRequestHost":"api.example.com","ClientRequestMethod":"GET","ClientRequestURI":"/v1/search?q=1%27%20or%20%271%27=%271&api_key=[REDACTED]","ClientRequestProtocol":"HTTP/1.1","ClientRequestScheme":"http","ClientRequestUserAgent":"sqlmap/1.7.2#stable (https://sqlmap.org)","EdgeStartTimestamp":1704448802,"EdgeEndTimestamp":1704448802,"EdgeResponseStatus":403,"EdgeResponseBytes":512,"RayID":"84a1b2c3d4e5f609","WAFAction":"drop","WAFRuleID":"100001","WAFRuleMessage":"SQLi - OR 1=1","WAFAttackScore":4,"ZoneName":"example.com"}',
            id: 'oOkjJ4r_wLa6iYKhfNHrZ-',
          },
          observer: {
            vendor: 'Cloudflare',
            product: 'Cloudflare',
            type: 'cdn',
            name: 'example.com',
          },
          source: {
            ip: '198.51.100.88',
            address: '198.51.100.88',
          },
          http: {
            version: '1.1',
            request: {
              id: '84a1b2c3d4e5f609',
              method: 'GET',
            },
            response: {
              status_code: 403,
              bytes: 512,
            },
          },
          user_agent: {
            original: 'sqlmap/1.7.2#stable (https://sqlmap.org)',
            name: 'sqlmap',
            version: '1.7.2',
          },
          rule: {
            id: '100001',
            name: 'SQLi - OR 1=1',
          },
          gatewatch: {
            waf: {
              action: 'block',
              rule_ids: ['100001'],
              attack_class: 'sqli',
            },
            extra: {
              WAFAttackScore: 4,
            },
            source: {
              format: 'cloudflare.http_requests',
              name: 'test',
            },
            client: {
              peer_ip: '198.51.100.88',
            },
            api_key: {
              fingerprint: '3c45e1fef1869db2b62b208128c1ead2',
              source: 'query',
              location: 'query',
            },
            auth: {
              present: true,
              scheme: 'api-key',
              attempt: true,
              outcome: 'unknown',
            },
            query_params: ['q', 'api_key'],
            redacted: ['api_key'],
            route: '/v1/search',
            resource: '/v1/search',
            network: {
              id: '198.51.100.0/24',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:02.000Z',
          url: {
            original: '/v1/search?q=1%27%20or%20%271%27=%271&api_key=[REDACTED]',
            path: '/v1/search',
            query: 'q=1%27%20or%20%271%27=%271&api_key=[REDACTED]',
            domain: 'api.example.com',
            scheme: 'http',
          },
        },
      ],
      failures: [],
    });
  });

  it('cloudflare.firewall_events sample line 0: exact normalised event', () => {
    expect(normalizeSample('cloudflare.firewall_events', 0, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'alert',
            category: ['web', 'network'],
            type: ['access', 'denied'],
            action: 'waf-block',
            outcome: 'failure',
            module: 'cloudflare',
            dataset: 'cloudflare.firewall_events',
            original:
              '{"Action":"block","ClientASN":64502,"ClientASNDescription":"EXAMPLE-HOSTING","ClientCountry":"nl","ClientIP":"203.0.113.201","ClientIPClass":"noRecord","ClientRefererHost":"","ClientRequestHost":"api.example.com","ClientRequestMethod":"GET","ClientRequestPath":"/wp-login.php","ClientRequestProtocol":"HTTP/1.1","ClientRequestQuery":"?redirect_to=%2Fadmin","ClientRequestScheme":"https","ClientRequestUserAgent":"Mozilla/5.0 zgrab/0.x","Datetime":"2024-01-05T10:00:00Z","Description":"Block scanners","EdgeColoCode":"AMS","EdgeResponseStatus":403,"Kind":"firewall","MatchIndex":0,"Metadata":{"ruleset_version":"66"},"OriginResponseStatus":0,"OriginatorRayID":"00","RayID":"84a1b2c3d4e5f610","RuleID":"0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e","Source":"firewallCustom"}',
            id: 'fVCiFdefR0MUdDf6_tadzX',
          },
          observer: {
            vendor: 'Cloudflare',
            product: 'Cloudflare WAF',
            type: 'waf',
          },
          source: {
            ip: '203.0.113.201',
            address: '203.0.113.201',
            geo: {
              country_iso_code: 'NL',
            },
            as: {
              number: 64502,
              organization: {
                name: 'EXAMPLE-HOSTING',
              },
            },
          },
          http: {
            version: '1.1',
            request: {
              id: '84a1b2c3d4e5f610',
              method: 'GET',
            },
            response: {
              status_code: 403,
            },
          },
          user_agent: {
            original: 'Mozilla/5.0 zgrab/0.x',
          },
          rule: {
            id: '0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e',
            name: 'Block scanners',
            ruleset: 'firewallCustom',
          },
          gatewatch: {
            waf: {
              action: 'block',
              rule_ids: ['0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e'],
              attack_class: 'scanner',
            },
            extra: {
              ClientIPClass: 'noRecord',
              EdgeColoCode: 'AMS',
              Kind: 'firewall',
              MatchIndex: 0,
              Metadata: {
                ruleset_version: '66',
              },
              OriginatorRayID: '00',
            },
            source: {
              format: 'cloudflare.firewall_events',
              name: 'test',
            },
            client: {
              peer_ip: '203.0.113.201',
            },
            query_params: ['redirect_to'],
            route: '/wp-login.php',
            resource: '/wp-login.php',
            network: {
              id: 'AS64502',
              kind: 'asn',
            },
          },
          '@timestamp': '2024-01-05T10:00:00.000Z',
          url: {
            original: '/wp-login.php?redirect_to=%2Fadmin',
            path: '/wp-login.php',
            query: 'redirect_to=%2Fadmin',
            domain: 'api.example.com',
            scheme: 'https',
          },
        },
      ],
      failures: [],
    });
  });
});
