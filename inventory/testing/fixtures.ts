/** Test helpers: events and specs. */
import type { GatewatchEvent } from '../../core/schema/event.ts';

export interface EventInit {
  host?: string;
  method?: string;
  route: string;
  status?: number;
  auth?: boolean;
  ip?: string;
  key?: string;
  bytes?: number;
  params?: string[];
  at?: string;
}

export function event(e: EventInit): Partial<GatewatchEvent> {
  return {
    '@timestamp': e.at ?? '2026-01-10T00:00:00.000Z',
    url: { domain: e.host ?? 'api.example.com' },
    http: {
      request: { method: e.method ?? 'GET' },
      response: { status_code: e.status ?? 200, bytes: e.bytes ?? 500 },
    },
    source: { ip: e.ip ?? '10.0.0.1' },
    gatewatch: {
      route: e.route,
      auth: { present: e.auth ?? true },
      ...(e.key ? { api_key: { fingerprint: e.key } } : {}),
      ...(e.params ? { query_params: e.params } : {}),
    },
  } as Partial<GatewatchEvent>;
}

export const PETSTORE_V1 = `
openapi: 3.0.3
info:
  title: Petstore
  version: "1.0"
servers:
  - url: https://api.example.com/api/v1
security:
  - apiKey: []
paths:
  /pets:
    get:
      operationId: listPets
      parameters:
        - { name: limit, in: query }
      responses:
        "200": { description: ok }
  /pets/{petId}:
    parameters:
      - { name: petId, in: path, required: true }
    get:
      operationId: getPet
      responses:
        "200": { description: ok }
        "404": { description: not found }
    delete:
      operationId: deletePet
      responses:
        "204": { description: deleted }
  /pets/mine:
    get:
      operationId: myPets
      responses:
        default: { description: any }
  /legacy/export:
    get:
      operationId: legacyExport
      deprecated: true
      responses:
        "200": { description: ok }
  /stores/{storeId}/report:
    get:
      operationId: storeReport
      parameters:
        - { name: storeId, in: path, required: true }
      responses:
        "200": { description: ok }
`;

/** v2: DELETE /pets/{petId} removed. */
export const PETSTORE_V2 = PETSTORE_V1.replace(
  `    delete:
      operationId: deletePet
      responses:
        "204": { description: deleted }
`,
  '',
).replace('version: "1.0"', 'version: "2.0"');

export const SWAGGER_2 = JSON.stringify({
  swagger: '2.0',
  info: { title: 'Legacy', version: '0.9' },
  host: 'legacy.example.com',
  basePath: '/rest',
  paths: {
    '/orders/{id}': {
      get: {
        parameters: [{ name: 'id', in: 'path', required: true, type: 'string' }],
        responses: { 200: { description: 'ok' } },
      },
    },
  },
});
