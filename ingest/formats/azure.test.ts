import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('Azure format: exact output', () => {
  it('azure.frontdoor sample line 2: exact normalised event', () => {
    expect(normalizeSample('azure.frontdoor', 2, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'alert',
            category: ['web', 'network'],
            type: ['access', 'allowed'],
            action: 'waf-log',
            outcome: 'success',
            module: 'azure',
            dataset: 'azure.frontdoor',
            original:
              '{"time":"2024-01-05T10:00:02Z","resourceId":"/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-EDGE/PROVIDERS/MICROSOFT.NETWORK/FRONTDOORS/AFD-CLASSIC","category":"FrontdoorWebApplicationFirewallLog","properties":{"clientIP":"192.0.2.150","clientPort":"33000","socketIP":"198.51.100.250","requestUri":"https://api.example.com:443/login","ruleName":"RateLimitLogin","policy":"classicPolicy","action":"Log","host":"api.example.com","trackingReference":"0aBcDeFgHiJkLmNoPqRsTuVwXyZ","policyMode":"detection","details":{"matches":[],"msg":"","data":""}}}',
            id: 'cpAc4BLJlh-1TFEfcH8s-0',
          },
          observer: {
            vendor: 'Microsoft',
            product: 'Front Door WAF',
            type: 'waf',
            name: 'afd-classic',
          },
          source: {
            ip: '198.51.100.250',
            address: '192.0.2.150',
            port: 33000,
          },
          http: {
            request: {
              id: '0aBcDeFgHiJkLmNoPqRsTuVwXyZ',
            },
          },
          rule: {
            id: 'RateLimitLogin',
            ruleset: 'classicPolicy',
          },
          gatewatch: {
            waf: {
              action: 'log',
              rule_ids: ['RateLimitLogin'],
            },
            extra: {
              policyMode: 'detection',
            },
            source: {
              format: 'azure.frontdoor',
              name: 'test',
            },
            client: {
              peer_ip: '198.51.100.250',
              forwarded_for: '192.0.2.150',
            },
            route: '/login',
            resource: '/login',
            auth: {
              endpoint: true,
            },
            network: {
              id: '198.51.100.0/24',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:02.000Z',
          url: {
            original: 'https://api.example.com:443/login',
            path: '/login',
            scheme: 'https',
            domain: 'api.example.com',
            port: 443,
          },
        },
      ],
      failures: [],
    });
  });

  it('azure.application_gateway sample line 0: exact normalised event', () => {
    expect(normalizeSample('azure.application_gateway', 0, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'alert',
            category: ['web', 'network'],
            type: ['access', 'denied'],
            action: 'waf-block',
            outcome: 'failure',
            module: 'azure',
            dataset: 'azure.application_gateway',
            original:
              '{"resourceId":"/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-API/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/APPGW-API","operationName":"ApplicationGatewayFirewall","category":"ApplicationGatewayFirewallLog","time":"2024-01-05T10:00:00.1234567Z","properties":{"instanceId":"appgw_1","clientIp":"203.0.113.7","clientPort":"","requestUri":"/api/search?q=%27%20or%201%3D1--","ruleSetType":"OWASP_CRS","ruleSetVersion":"3.2","ruleId":"942100","message":"SQL Injection Attack Detected via libinjection","action":"Blocked","site":"Global","details":{"message":"Warning. detected SQLi using libinjection with fingerprint \'s&1c\' ","data":"Matched Data: s&1c found within ARGS:q: \' or 1=1--","file":"rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf","line":"65"},"hostname":"api.example.com","transactionId":"e0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5","policyId":"default","policyScope":"Global","policyScopeName":"Global","engine":"Azwaf"}}',
            id: 'ehbYzPzGSfrAIbYZYL8Znq',
          },
          observer: {
            vendor: 'Microsoft',
            product: 'Application Gateway WAF',
            type: 'waf',
            name: 'appgw-api',
          },
          source: {
            ip: '203.0.113.7',
            address: '203.0.113.7',
          },
          http: {
            request: {
              id: 'e0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5',
            },
          },
          rule: {
            id: '942100',
            name: 'SQL Injection Attack Detected via libinjection',
            ruleset: 'OWASP_CRS',
          },
          gatewatch: {
            waf: {
              action: 'block',
              rule_ids: ['942100'],
              attack_class: 'sqli',
            },
            extra: {
              ruleSetVersion: '3.2',
              policyId: 'default',
              engine: 'Azwaf',
              details: {
                message: "Warning. detected SQLi using libinjection with fingerprint 's&1c' ",
                data: "Matched Data: s&1c found within ARGS:q: ' or 1=1--",
                file: 'rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf',
              },
            },
            source: {
              format: 'azure.application_gateway',
              name: 'test',
            },
            client: {
              peer_ip: '203.0.113.7',
            },
            query_params: ['q'],
            route: '/api/search',
            resource: '/api/search',
            network: {
              id: '203.0.113.0/24',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:00.123Z',
          url: {
            original: '/api/search?q=%27%20or%201%3D1--',
            path: '/api/search',
            query: 'q=%27%20or%201%3D1--',
            domain: 'api.example.com',
          },
        },
      ],
      failures: [],
    });
  });
});
