/**
 * Classify discovered endpoints against imported specs and turn the results into findings:
 * - shadow: traffic that no operation of any current spec describes;
 * - zombie: traffic to an operation marked `deprecated`, or removed (in an older version of a
 *   spec, absent from the current one);
 * - orphan: a current operation with no traffic for `orphanDays` (counted from the later of
 *   its last traffic and the first import of its spec);
 * - undocumented query parameters and status codes on documented endpoints;
 * - anonymous success on an endpoint that is normally authenticated (or whose spec requires
 *   security).
 * Findings have deterministic ids: hash(kind, host, method, route).
 */

import { type CompiledOperation, OperationIndex } from './specs/match.ts';
import type { SpecOperation } from './specs/openapi.ts';
import type { ImportedSpec } from './specs/registry.ts';
import { authShare, type EndpointState, stableId } from './state.ts';

export type Classification = 'documented' | 'shadow' | 'zombie';
export const CLASSIFICATIONS: readonly Classification[] = ['documented', 'shadow', 'zombie'];

export type FindingKind =
  | 'shadow'
  | 'zombie'
  | 'orphan'
  | 'undocumented_parameter'
  | 'undocumented_status'
  | 'anonymous_success';
export const FINDING_KINDS: readonly FindingKind[] = [
  'shadow',
  'zombie',
  'orphan',
  'undocumented_parameter',
  'undocumented_status',
  'anonymous_success',
];

export interface OperationRef {
  spec_id: string;
  spec_key: string;
  spec_version: number;
  method: string;
  path: string;
  operation_id?: string;
}

export interface EndpointClassification {
  classification: Classification;
  reason: 'documented' | 'deprecated' | 'removed' | 'no-operation' | 'method-not-documented';
  operation?: OperationRef;
  undocumented_params: string[];
  undocumented_statuses: string[];
  /** Normally authenticated (or spec requires auth) and yet answered 2xx without credentials. */
  anonymous_success: boolean;
}

export interface Finding {
  id: string;
  kind: FindingKind;
  severity: 'low' | 'medium' | 'high';
  host: string;
  method: string;
  route: string;
  title: string;
  detail: string;
  endpoint_id?: string;
  first_seen?: string;
  last_seen?: string;
  operation?: OperationRef;
  evidence: Record<string, unknown>;
}

export interface ClassifierOptions {
  /** Days without traffic before a documented operation is an orphan (default 30). */
  orphanDays?: number;
  /** Share of authenticated requests that makes an endpoint "normally authenticated" (default 0.95). */
  authShare?: number;
  /** Requests with a known auth state needed to judge the share (default 20). */
  minAuthSamples?: number;
  /** Status codes never reported as undocumented (e.g. gateway answers; default none). */
  ignoreStatuses?: number[];
}

function ref(c: CompiledOperation): OperationRef {
  return {
    spec_id: c.spec.id,
    spec_key: c.spec.key,
    spec_version: c.spec.version,
    method: c.op.method,
    path: c.fullPath,
    ...(c.op.operationId ? { operation_id: c.op.operationId } : {}),
  };
}

function statusDocumented(op: SpecOperation, code: string): boolean {
  return (
    op.statuses.includes(code) || op.statuses.includes('default') || op.statuses.includes(`${code[0]}XX`)
  );
}

export function findingId(kind: FindingKind, host: string, method: string, route: string): string {
  return stableId('finding', kind, host, method, route);
}

export class Classifier {
  private readonly current: OperationIndex;
  private readonly older: OperationIndex;
  private readonly currentSpecs: ImportedSpec[];
  private readonly firstImport = new Map<string, string>();
  private readonly orphanMs: number;
  private readonly authShare: number;
  private readonly minAuthSamples: number;
  private readonly ignoreStatuses: Set<string>;

  constructor(specs: readonly ImportedSpec[], options: ClassifierOptions = {}) {
    const latest = new Map<string, ImportedSpec>();
    for (const s of specs) {
      const cur = latest.get(s.key);
      if (!cur || s.version > cur.version) latest.set(s.key, s);
      const first = this.firstImport.get(s.key);
      if (!first || s.imported_at < first) this.firstImport.set(s.key, s.imported_at);
    }
    this.currentSpecs = [...latest.values()];
    this.current = new OperationIndex(this.currentSpecs);
    this.older = new OperationIndex(specs.filter((s) => latest.get(s.key) !== s));
    this.orphanMs = (options.orphanDays ?? 30) * 86_400_000;
    this.authShare = options.authShare ?? 0.95;
    this.minAuthSamples = options.minAuthSamples ?? 20;
    this.ignoreStatuses = new Set((options.ignoreStatuses ?? []).map(String));
  }

  classify(e: EndpointState): EndpointClassification {
    const { best, pathOnly } = this.current.match(e.host, e.method, e.route_key);
    let classification: Classification;
    let reason: EndpointClassification['reason'];
    let match: CompiledOperation | undefined;
    if (best) {
      match = best;
      classification = best.op.deprecated ? 'zombie' : 'documented';
      reason = best.op.deprecated ? 'deprecated' : 'documented';
    } else {
      const old = this.older.match(e.host, e.method, e.route_key).best;
      if (old) {
        match = old;
        classification = 'zombie';
        reason = 'removed';
      } else {
        classification = 'shadow';
        reason = pathOnly ? 'method-not-documented' : 'no-operation';
      }
    }
    const undocumented_params =
      match && reason !== 'removed' ? e.params.filter((p) => !match.op.queryParams.includes(p)) : [];
    const undocumented_statuses =
      match && reason !== 'removed'
        ? Object.keys(e.status_codes)
            .filter((c) => !this.ignoreStatuses.has(c) && !statusDocumented(match.op, c))
            .sort()
        : [];
    const known = e.auth.present + e.auth.absent;
    const normallyAuthenticated =
      (match?.op.requiresAuth === true && reason !== 'removed') ||
      (known >= this.minAuthSamples && authShare(e) >= this.authShare);
    return {
      classification,
      reason,
      ...(match ? { operation: ref(match) } : {}),
      undocumented_params,
      undocumented_statuses,
      anonymous_success: normallyAuthenticated && e.auth.anonymous_success > 0,
    };
  }

  /** Findings for a set of endpoints (all of them: orphans need the whole inventory). */
  findings(endpoints: Iterable<EndpointState>, now: Date = new Date()): Finding[] {
    const out: Finding[] = [];
    const lastTraffic = new Map<CompiledOperation['op'], string>();
    for (const e of endpoints) {
      const c = this.classify(e);
      const base = {
        host: e.host,
        method: e.method,
        route: e.route,
        endpoint_id: e.id,
        first_seen: e.first_seen,
        last_seen: e.last_seen,
        ...(c.operation ? { operation: c.operation } : {}),
      };
      const mk = (
        kind: FindingKind,
        severity: Finding['severity'],
        title: string,
        detail: string,
        evidence: Record<string, unknown>,
      ) =>
        out.push({
          id: findingId(kind, e.host, e.method, e.route_key),
          kind,
          severity,
          title,
          detail,
          evidence,
          ...base,
        });
      const where = `${e.method} ${e.host}${e.route}`;
      if (c.classification === 'shadow') {
        mk(
          'shadow',
          'medium',
          `Shadow API: ${where}`,
          c.reason === 'method-not-documented'
            ? `The path is documented but not for ${e.method}; ${e.requests} requests seen.`
            : `No operation in any imported spec matches this endpoint; ${e.requests} requests seen.`,
          { requests: e.requests, reason: c.reason, clients: e.clients_estimate },
        );
      } else if (c.classification === 'zombie') {
        mk(
          'zombie',
          c.reason === 'removed' ? 'high' : 'medium',
          `Zombie API: ${where}`,
          c.reason === 'removed'
            ? `The operation ${c.operation?.method} ${c.operation?.path} was removed from spec "${c.operation?.spec_key}" (last in version ${c.operation?.spec_version}) but still gets traffic.`
            : `The operation ${c.operation?.method} ${c.operation?.path} is deprecated but still gets traffic.`,
          { requests: e.requests, reason: c.reason, success: e.status_classes['2xx'] },
        );
      }
      if (c.undocumented_params.length > 0) {
        mk(
          'undocumented_parameter',
          'low',
          `Undocumented query parameters on ${where}`,
          `Parameters not in the spec: ${c.undocumented_params.join(', ')}.`,
          { params: c.undocumented_params },
        );
      }
      if (c.undocumented_statuses.length > 0) {
        mk(
          'undocumented_status',
          'low',
          `Undocumented status codes on ${where}`,
          `Status codes not in the spec: ${c.undocumented_statuses.join(', ')}.`,
          { statuses: Object.fromEntries(c.undocumented_statuses.map((s) => [s, e.status_codes[s]])) },
        );
      }
      if (c.anonymous_success) {
        mk(
          'anonymous_success',
          'high',
          `Anonymous success on authenticated endpoint ${where}`,
          `${e.auth.anonymous_success} requests without credentials got a 2xx answer; ${Math.round(authShare(e) * 100)} % of requests carry credentials.`,
          {
            anonymous_success: e.auth.anonymous_success,
            auth_present: e.auth.present,
            auth_absent: e.auth.absent,
            last_anonymous_success: e.auth.last_anonymous_success,
          },
        );
      }
      if (c.classification !== 'shadow' && c.reason !== 'removed') {
        const { best } = this.current.match(e.host, e.method, e.route_key);
        if (best) {
          const prev = lastTraffic.get(best.op);
          if (!prev || e.last_seen > prev) lastTraffic.set(best.op, e.last_seen);
        }
      }
    }
    for (const spec of this.currentSpecs) {
      const since = this.firstImport.get(spec.key) ?? spec.imported_at;
      for (const op of spec.operations) {
        const last = lastTraffic.get(op);
        const reference = last && last > since ? last : since;
        if (now.getTime() - Date.parse(reference) < this.orphanMs) continue;
        const host = spec.hosts[0] ?? '*';
        const route = op.fullPaths[0] ?? op.path;
        out.push({
          id: findingId('orphan', host, op.method, route),
          kind: 'orphan',
          severity: 'low',
          host,
          method: op.method,
          route,
          title: `Orphan API: ${op.method} ${route} (${spec.key})`,
          detail: last
            ? `No traffic since ${last}.`
            : `No traffic seen since the spec "${spec.key}" was first imported (${since}).`,
          operation: {
            spec_id: spec.id,
            spec_key: spec.key,
            spec_version: spec.version,
            method: op.method,
            path: route,
            ...(op.operationId ? { operation_id: op.operationId } : {}),
          },
          evidence: { last_traffic: last ?? null, spec_first_imported: since, hosts: spec.hosts },
          ...(last ? { last_seen: last } : {}),
        });
      }
    }
    return out;
  }
}

/** Findings whose id is not in `known`: the ones to raise as new incidents. */
export function newFindings(current: readonly Finding[], known: ReadonlySet<string>): Finding[] {
  return current.filter((f) => !known.has(f.id));
}
