import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('AWS WAF format: exact output', () => {
  it('aws.waf sample line 0: exact normalised event', () => {
    expect(normalizeSample('aws.waf', 0, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'alert',
            category: ['web', 'network'],
            type: ['access', 'denied'],
            action: 'waf-block',
            outcome: 'failure',
            module: 'aws',
            dataset: 'aws.waf',
            original:
              '{"timestamp":1704448800123,"formatVersion":1,"webaclId":"arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/api-acl/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111","terminatingRuleId":"AWS-AWSManagedRulesSQLiRuleSet","terminatingRuleType":"MANAGED_RULE_GROUP","action":"BLOCK","terminatingRuleMatchDetails":[{"conditionType":"SQL_INJECTION","sensitivityLevel":"LOW","location":"QUERY_STRING","matchedData":["1","OR","1=1"]}],"httpSourceName":"ALB","httpSourceId":"123456789012-app/api-alb/50dc6c495c0c9188","ruleGroupList":[{"ruleGroupId":"AWS#AWSManagedRulesSQLiRuleSet","terminatingRule":{"ruleId":"SQLi_QUERYARGUMENTS","action":"BLOCK","ruleMatchDetails":null},"nonTerminatingMatchingRules":[],"excludedRules":null,"customerConfig":null}],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"203.0.113.45","country":"NL","headers":[{"name":"Host","value":"api.example.com"},{"name":"User-Agent","value":"sqlmap/1.7.2#stable (https://sqlmap.org)"},{"name":"Accept","value":"*/*"},{"name":"X-Forwarded-For","value":"198.51.100.7"}],"uri":"/v1/products","args":"id=1%27%20OR%20%271%27%3D%271","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-65a3f2e0-0d4c6b1a2f3e4d5c6b7a8901"},"labels":[{"name":"awswaf:managed:aws:sql-database:SQLi_QueryArguments"}],"ja3Fingerprint":"e7d705a3286e19ea42f587b344ee6865","requestBodySize":0,"requestBodySizeInspectedByWAF":0}',
            id: 'VvLbn5wZawmg1aEwmrAkgT',
          },
          observer: {
            vendor: 'AWS',
            product: 'WAF',
            type: 'waf',
            name: 'api-acl',
          },
          http: {
            version: '1.1',
            request: {
              id: '1-65a3f2e0-0d4c6b1a2f3e4d5c6b7a8901',
              method: 'GET',
              bytes: 0,
            },
          },
          gatewatch: {
            waf: {
              action: 'block',
              rule_ids: ['AWS-AWSManagedRulesSQLiRuleSet', 'SQLi_QUERYARGUMENTS'],
              attack_class: 'sqli',
            },
            extra: {
              webaclId:
                'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/api-acl/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111',
              httpSourceName: 'ALB',
              httpSourceId: '123456789012-app/api-alb/50dc6c495c0c9188',
              labels: ['awswaf:managed:aws:sql-database:SQLi_QueryArguments'],
              terminatingRuleMatchDetails: [
                {
                  conditionType: 'SQL_INJECTION',
                  location: 'QUERY_STRING',
                  matchedData: ['1', 'OR', '1=1'],
                },
              ],
            },
            source: {
              format: 'aws.waf',
              name: 'test',
            },
            client: {
              peer_ip: '203.0.113.45',
              forwarded_for: '198.51.100.7',
            },
            auth: {
              present: false,
              scheme: 'none',
            },
            query_params: ['id'],
            route: '/v1/products',
            resource: '/v1/products?id=1%27%20OR%20%271%27%3D%271',
            network: {
              id: '203.0.113.0/24',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:00.123Z',
          source: {
            ip: '203.0.113.45',
            geo: {
              country_iso_code: 'NL',
            },
          },
          user_agent: {
            original: 'sqlmap/1.7.2#stable (https://sqlmap.org)',
            name: 'sqlmap',
            version: '1.7.2',
          },
          url: {
            original: '/v1/products?id=1%27%20OR%20%271%27%3D%271',
            path: '/v1/products',
            query: 'id=1%27%20OR%20%271%27%3D%271',
            domain: 'api.example.com',
          },
          rule: {
            id: 'AWS-AWSManagedRulesSQLiRuleSet',
            ruleset: 'MANAGED_RULE_GROUP',
            name: 'SQLi_QUERYARGUMENTS',
          },
          tls: {
            client: {
              ja3: 'e7d705a3286e19ea42f587b344ee6865',
            },
          },
        },
      ],
      failures: [],
    });
  });

  it('aws.waf sample line 3: exact normalised event', () => {
    expect(normalizeSample('aws.waf', 3, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'alert',
            category: ['web', 'network'],
            type: ['access', 'allowed'],
            action: 'waf-allow',
            outcome: 'success',
            module: 'aws',
            dataset: 'aws.waf',
            original:
              '{"timestamp":1704448803000,"formatVersion":1,"webaclId":"arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/api-acl/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":"123456789012-app/api-alb/50dc6c495c0c9188","ruleGroupList":[{"ruleGroupId":"AWS#AWSManagedRulesBotControlRuleSet","terminatingRule":null,"nonTerminatingMatchingRules":[{"ruleId":"CategoryHttpLibrary","action":"COUNT"}],"excludedRules":null}],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"198.51.100.23","country":"DE","headers":[{"name":"Host","value":"api.example.com"},{"name":"x-api-key","value":"[REDACTED]"},{"name":"User-Agent","value":"Go-http-client/1.1"}],"uri":"/v1/users/8812/profile","args":"fields=name%2Cemail&access_token=[REDACTED]","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-65a3f2e3-00aa11bb22cc33dd44ee55ff"},"labels":[{"name":"awswaf:managed:aws:bot-control:bot:category:http_library"}]}',
            id: 'mPnu9Z4WfiegHOTRPn0n41',
          },
          observer: {
            vendor: 'AWS',
            product: 'WAF',
            type: 'waf',
            name: 'api-acl',
          },
          http: {
            version: '1.1',
            request: {
              id: '1-65a3f2e3-00aa11bb22cc33dd44ee55ff',
              method: 'GET',
            },
          },
          gatewatch: {
            waf: {
              action: 'allow',
              rule_ids: ['CategoryHttpLibrary'],
              attack_class: 'bot',
            },
            extra: {
              webaclId:
                'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/api-acl/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111',
              httpSourceName: 'ALB',
              httpSourceId: '123456789012-app/api-alb/50dc6c495c0c9188',
              labels: ['awswaf:managed:aws:bot-control:bot:category:http_library'],
            },
            source: {
              format: 'aws.waf',
              name: 'test',
            },
            client: {
              peer_ip: '198.51.100.23',
            },
            api_key: {
              fingerprint: '1d0fc801010a0557212ac56fbdcedcbf',
              source: 'header',
              location: 'header',
            },
            auth: {
              present: true,
              scheme: 'api-key',
              attempt: true,
              outcome: 'unknown',
            },
            query_params: ['fields', 'access_token'],
            redacted: ['x-api-key', 'access_token'],
            route: '/v1/users/{id}/profile',
            resource: '/v1/users/8812/profile',
            network: {
              id: '198.51.100.0/24',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:03.000Z',
          source: {
            ip: '198.51.100.23',
            geo: {
              country_iso_code: 'DE',
            },
          },
          user_agent: {
            original: 'Go-http-client/1.1',
            name: 'Go-http-client',
            version: '1.1',
          },
          url: {
            original: '/v1/users/8812/profile?fields=name%2Cemail&access_token=[REDACTED]',
            path: '/v1/users/8812/profile',
            query: 'fields=name%2Cemail&access_token=[REDACTED]',
            domain: 'api.example.com',
          },
        },
      ],
      failures: [],
    });
  });
});
