import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createIdentityResolver, isPlaceholderSecret } from './identity.ts';
import { createScrubber, isSecretName, scrubSecrets, storableRecord } from './scrub.ts';
import { carriedFingerprint, dropFingerprints } from './surrogate.ts';

const KEY = 'scrub-test-fingerprint-key';
const scrub = createScrubber({ fingerprintSecret: KEY });
const identity = createIdentityResolver({ fingerprintSecret: KEY });
const fp = (v: string) => identity.fingerprint(v)!;

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const JWT = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'user-42', iss: 'https://idp.example' })}.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1zZWNyZXQ`;
const SIGNATURE = JWT.slice(JWT.lastIndexOf('.') + 1);
const STRIPE = 'sk_live_51HxYzAbCdEfGhIjKlMnOp';
const BASIC = Buffer.from('alice:correct horse battery').toString('base64');

/** [where, record, secrets that must go, text that must stay] */
const CASES: [string, string, string[], string[]][] = [
  [
    'JSON headers: authorization, API key, cookie',
    `{"request":{"headers":{"authorization":"Bearer ${JWT}","x-api-key":"k3y-abcdef-123456","cookie":"sid=s3ss10nValue; theme=dark"}}}`,
    [SIGNATURE, 'k3y-abcdef-123456', 's3ss10nValue'],
    ['"authorization":"Bearer ', '"x-api-key":', 'sid=', 'theme='],
  ],
  [
    'query string in a JSON field',
    `{"uri":"/v1/orders?api_key=${STRIPE}&page=2&access_token=tok-abcdef"}`,
    [STRIPE, 'tok-abcdef'],
    ['/v1/orders?api_key=', '&page=2&access_token='],
  ],
  [
    'query string in a text line',
    `203.0.113.9 - - [05/Jan/2024:10:00:00 +0000] "GET /p?password=hunter2hunter&q=shoes HTTP/1.1" 200 12 "-" "curl/8"`,
    ['hunter2hunter'],
    ['"GET /p?password=', '&q=shoes HTTP/1.1" 200 12 "-" "curl/8"'],
  ],
  [
    'JWT as a path segment',
    `203.0.113.9 - - [05/Jan/2024:10:00:00 +0000] "GET /reset/${JWT}/confirm HTTP/1.1" 200 12`,
    [SIGNATURE],
    ['"GET /reset/', '/confirm HTTP/1.1" 200 12'],
  ],
  [
    'Basic credentials (user name kept)',
    `{"headers":{"Authorization":"Basic ${BASIC}"}}`,
    [BASIC, 'correct horse battery'],
    ['"Authorization":"Basic '],
  ],
  [
    'AWS WAF name/value header pairs',
    '{"httpRequest":{"headers":[{"name":"Authorization","value":"Bearer opaque-token-123456"},{"name":"Host","value":"api.example.com"}]}}',
    ['opaque-token-123456'],
    ['{"name":"Host","value":"api.example.com"}'],
  ],
  [
    'JSON nested in a JSON string (a shipper message)',
    `{"message":"{\\"user\\":\\"bob\\",\\"password\\":\\"pa55w0rd!x\\",\\"headers\\":{\\"authorization\\":\\"Bearer ${JWT}\\"}}"}`,
    ['pa55w0rd!x', SIGNATURE],
    ['{"message":"{\\"user\\":\\"bob\\"'],
  ],
  [
    'form, JSON and multipart bodies',
    '{"form":"user=bob&password=formPass123","json":"{\\"pin\\":\\"1\\",\\"newPassword\\":\\"jsonPass456\\"}","multipart":"--x\\r\\nContent-Disposition: form-data; name=\\"client_secret\\"\\r\\n\\r\\nmultiPass789\\r\\n--x--"}',
    ['formPass123', 'jsonPass456', 'multiPass789'],
    ['user=bob&password=', 'name=\\"client_secret\\"'],
  ],
  [
    'XML body',
    '<login><user>bob</user><password>xmlPass321</password></login>',
    ['xmlPass321'],
    ['<user>bob</user><password>', '</password></login>'],
  ],
  [
    'ModSecurity v3 message data and match',
    `{"messages":[{"details":{"data":"Matched Data: ' or found within ARGS:password: x' or 1=1--secretpw","match":"Matched \\"Operator \`Rx' with parameter \`(?i)or' against variable \`ARGS:password' (Value: \`x' or 1=1--secretpw' )"}}]}`,
    ["x' or 1=1--secretpw"],
    ['found within ARGS:password: ', 'against variable `ARGS:password'],
  ],
  [
    'ModSecurity v2 message strings',
    `{"audit_data":{"messages":["Warning. Matched phrase \\"hunter\\" at ARGS:passwd. [data \\"Matched Data: hunter found within ARGS:passwd: hunter2hunter\\"] [severity \\"CRITICAL\\"]"]}}`,
    ['hunter2hunter', 'Matched phrase \\"hunter\\"'],
    ['at ARGS:passwd.', '[severity \\"CRITICAL\\"]'],
  ],
  [
    'raw header lines and well-known key formats in free text',
    'upstream said Authorization: Bearer opaque1234567 then AKIAIOSFODNN7EXAMPLE, ghp_0123456789abcdefghijklmnopqrstuvwxyzAB and xoxb-1234567890-abcdefghij',
    [
      'opaque1234567',
      'AKIAIOSFODNN7EXAMPLE',
      'ghp_0123456789abcdefghijklmnopqrstuvwxyzAB',
      'xoxb-1234567890-abcdefghij',
    ],
    ['upstream said Authorization: Bearer ', ' then '],
  ],
  [
    'response Set-Cookie (several cookies, attributes kept)',
    '{"response":{"headers":{"set-cookie":["session=srvSess1on42; Path=/; HttpOnly","csrf=csrfT0ken99; Expires=Wed, 21 Oct 2026 07:28:00 GMT"]}}}',
    ['srvSess1on42', 'csrfT0ken99'],
    ['Path=/; HttpOnly', 'Expires=Wed, 21 Oct 2026 07:28:00 GMT'],
  ],
];

describe('secret scrubbing of raw records', () => {
  for (const [where, record, secrets, kept] of CASES) {
    it(`removes secrets: ${where}`, () => {
      const out = scrub(record);
      for (const s of secrets) expect(out, s).not.toContain(s);
      for (const k of kept) expect(out, k).toContain(k);
      expect(out).not.toBe(record);
      // what may be stored: no fingerprints, still no secret
      const stored = storableRecord(record);
      for (const s of secrets) expect(stored, s).not.toContain(s);
      expect(stored).not.toMatch(/REDACTED:[0-9a-f]/);
    });
  }

  it('is idempotent and deterministic: scrubbing scrubbed text changes nothing', () => {
    for (const [, record] of CASES) {
      const once = scrub(record);
      expect(scrub(once)).toBe(once);
      expect(scrub(record)).toBe(once);
      expect(scrub(`${record}\r\n`)).toBe(`${once}\r\n`);
      expect(scrubSecrets(once)).toBe(once);
    }
  });

  it('is idempotent on generated records mixing secrets, quoting and nesting', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9!@#%^*()_+~=.\-/ ]{1,24}$/);
    const name = fc.constantFrom(
      'password',
      'api_key',
      'token',
      'authorization',
      'cookie',
      'page',
      'q',
      'user',
    );
    const piece = fc.oneof(
      fc.tuple(name, secret).map(([n, v]) => `${n}=${encodeURIComponent(v)}`),
      fc.tuple(name, secret).map(([n, v]) => `${JSON.stringify(n)}:${JSON.stringify(v)}`),
      fc.tuple(name, secret).map(([n, v]) => JSON.stringify({ message: JSON.stringify({ [n]: v }) })),
      fc.tuple(name, secret).map(([n, v]) => `${n}: ${v}`),
      secret.map((v) => `Bearer ${v.replace(/ /g, '')}x`),
      fc.constant(JWT),
      fc.constant(STRIPE),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(
        fc.array(piece, { minLength: 1, maxLength: 6 }),
        fc.constantFrom(' ', '&', ', ', '\t'),
        (parts, sep) => {
          const record = parts.join(sep);
          const once = scrub(record);
          expect(scrub(once)).toBe(once);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('leaves records without secrets byte for byte as they are', () => {
    const benign = [
      '203.0.113.9 - - [05/Jan/2024:10:00:00 +0000] "GET /v1/users/42/orders?page=2&sort=desc HTTP/1.1" 200 1234 "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"',
      '{"client_ip":"203.0.113.9","request":{"method":"GET","uri":"/v1/search?q=tokenize%20keyword&limit=10","headers":{"host":"api.example.com","user-agent":"okhttp/4.12.0","content-type":"application/json"}},"latencies":{"kong":3},"authenticated_entity":{"id":"4f2c1a7e-8b9d-4e3f"},"consumer":{"username":"mobile-app"}}',
      '{"apiKeyId":"key_live_42","credential_id":"c-77","tokenCount":3,"keyword":"secretary","auth_time":"2024-01-05T10:00:00Z"}',
      '{"headers":{"x-kong-apikey":"REDACTED-BY-KONG","authorization":"-","cookie":""}}',
    ];
    for (const line of benign) expect(scrub(line)).toBe(line);
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('status', 'host', 'path', 'method', 'bytes', 'route', 'region', 'user_agent'),
          fc.oneof(fc.string({ maxLength: 30 }), fc.integer()),
        ),
        (o) => {
          const line = JSON.stringify(o);
          expect(scrub(line)).toBe(line);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives workers the fingerprints, JWT claims and Basic user names of the raw secrets', () => {
    const out = JSON.parse(
      scrub(
        `{"a":"Bearer ${JWT}","k":"${STRIPE}","b":"Basic ${BASIC}"}`
          .replace(/"k"/, '"x-api-key"')
          .replace(/"a"/, '"authorization"')
          .replace(/"b"/, '"proxy-authorization"'),
      ),
    ) as Record<string, string>;
    const bearer = out.authorization!.slice('Bearer '.length);
    expect(carriedFingerprint(bearer)).toBe(fp(JWT));
    expect(identity.fingerprint(bearer)).toBe(fp(JWT));
    // the claims stay readable: the header and payload are kept, the signature is gone
    expect(bearer.startsWith(JWT.slice(0, JWT.lastIndexOf('.') + 1))).toBe(true);
    expect(carriedFingerprint(out['x-api-key']!)).toBe(fp(STRIPE));
    const basic = out['proxy-authorization']!.slice('Basic '.length);
    expect(carriedFingerprint(basic)).toBe(fp(BASIC));
    expect(Buffer.from(basic, 'base64').toString().startsWith('alice:[REDACTED:')).toBe(true);
    // query values are fingerprinted decoded, as identity reads them
    const q = scrub('/p?api_key=a%2Bb%20c');
    expect(carriedFingerprint(q.slice(q.indexOf('=') + 1))).toBe(fp('a+b c'));
  });

  it('tells different secrets apart and depends on the key', () => {
    expect(scrub('token=aaaaaaaa')).not.toBe(scrub('token=bbbbbbbb'));
    expect(createScrubber({ fingerprintSecret: 'another-key-for-the-test' })('token=aaaaaaaa')).not.toBe(
      scrub('token=aaaaaaaa'),
    );
    expect(createScrubber()('token=aaaaaaaa')).toBe('token=[REDACTED]');
  });

  it('names secrets by word, keeping the identifiers of credentials', () => {
    for (const n of [
      'password',
      'api_key',
      'X-Api-Key',
      'client_secret',
      'JSESSIONID',
      'session_id',
      'user[password]',
    ])
      expect(isSecretName(n), n).toBe(true);
    for (const n of ['apiKeyId', 'credential_id', 'access_key_id', 'keyword', 'tokenize', 'page'])
      expect(isSecretName(n), n).toBe(false);
  });

  it('stores surrogates as the plain marker', () => {
    const scrubbed = scrub(`{"authorization":"Basic ${BASIC}","jwt":"${JWT}","k":"token=abcdefgh"}`);
    expect(dropFingerprints(scrubbed)).toBe(
      '{"authorization":"Basic [REDACTED]","jwt":"[REDACTED]","k":"token=[REDACTED]"}',
    );
  });

  it('reads each record in time linear in its length: pathological records are scrubbed too', () => {
    // A quadratic rule would take hours on these (256 KiB each); each is read a bounded number of times.
    const n = 1 << 18;
    const records = [
      'A'.repeat(n),
      'password: a, '.repeat(n / 13),
      'password=password='.repeat(n / 18),
      'password="'.repeat(n / 10),
      '"password":"'.repeat(n / 12),
      '{"password":['.repeat(n / 14),
      'eyJabc.'.repeat(n / 7),
      'Authorization: Bearer '.repeat(n / 22),
      `{"m":"${'\\"'.repeat(n / 2)}"}`,
      'Matched Data: x found within ARGS:password: '.repeat(n / 46),
      'form-data; name="password"\r\n'.repeat(n / 28),
    ];
    for (const r of records) {
      const out = scrub(r);
      expect(out.length).toBeGreaterThan(0);
    }
  });

  it("leaves gateways' masks as they are, and a scrubbed key is no mask to identity", () => {
    for (const mask of ['REDACTED-BY-KONG', '[FILTERED]', '<masked>', '***', 'n/a', 'hidden']) {
      const line = JSON.stringify({ headers: { 'x-api-key': mask } });
      expect(scrub(line), mask).toBe(line);
      expect(isPlaceholderSecret(mask), mask).toBe(true);
    }
    const scrubbed = (JSON.parse(scrub('{"x-api-key":"k-0123456789abcdef"}')) as Record<string, string>)[
      'x-api-key'
    ]!;
    expect(isPlaceholderSecret(scrubbed)).toBe(false);
  });
});
