/** Names for the API's shapes, taken from the generated OpenAPI types. */
import type { paths } from './schema';

type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type Ok<Op> = Op extends { responses: { 200: infer R } } ? Json<R> : never;

export type IncidentPage = Ok<paths['/api/v1/incidents']['get']>;
export type IncidentSummary = IncidentPage['items'][number];
export type Incident = Ok<paths['/api/v1/incidents/{id}']['get']>;
export type IncidentStats = Ok<paths['/api/v1/incidents/stats']['get']>;
export type Timeline = Ok<paths['/api/v1/incidents/{id}/timeline']['get']>;
export type Session = Ok<paths['/api/v1/session']['get']>;
export type RuleSummary = Ok<paths['/api/v1/rules']['get']>['items'][number];
export type RuleDetail = Ok<paths['/api/v1/rules/{id}']['get']>;
export type RunRecord = Ok<paths['/api/v1/rules/{id}/runs']['get']>['items'][number];
export type RuleException = Ok<paths['/api/v1/exceptions']['get']>['items'][number];
export type EntityView = Ok<paths['/api/v1/entities/{type}/{value}']['get']>;
export type Diagnostic = Ok<paths['/api/v1/rules/validate']['post']>['diagnostics'][number];
export type TestRun = Ok<paths['/api/v1/rules/{id}/tests']['get']>;
export type EventField = Ok<paths['/api/v1/events/fields']['get']>['items'][number];
export type Status = Incident['status'];
export type Severity = Incident['severity'];
export type EntityType = paths['/api/v1/entities/{type}/{value}']['get']['parameters']['path']['type'];
export type Endpoint = Ok<paths['/api/v1/inventory/endpoints']['get']>['items'][number];
export type Finding = Ok<paths['/api/v1/inventory/findings']['get']>['items'][number];
