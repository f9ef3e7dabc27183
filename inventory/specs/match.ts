/**
 * Match observed route templates to spec operations by path-template matching, in the
 * APIClarity order: an exact (parameter-free) match first, then the fewest parameters, then
 * literals before parameters from the left.
 */
import type { SpecOperation } from './openapi.ts';
import type { ImportedSpec } from './registry.ts';

type Seg = { kind: 'lit'; value: string } | { kind: 'param' } | { kind: 'mixed'; re: RegExp };

export interface CompiledOperation {
  spec: ImportedSpec;
  op: SpecOperation;
  fullPath: string;
  segs: Seg[];
  params: number;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function compilePath(path: string): Seg[] {
  return path
    .split('/')
    .slice(1)
    .map((s): Seg => {
      if (/^\{[^}]+\}$/.test(s)) return { kind: 'param' };
      if (s.includes('{')) {
        const re = new RegExp(
          `^${s
            .split(/\{[^}]+\}/)
            .map(escapeRe)
            .join('[^/]+')}$`,
        );
        return { kind: 'mixed', re };
      }
      return { kind: 'lit', value: s };
    });
}

const isPlaceholder = (s: string) => s.startsWith('{') && s.endsWith('}');

/** Whether a spec path matches an observed route; literal segments must be equal. */
function matchSegs(segs: Seg[], route: string[]): boolean {
  if (segs.length !== route.length) return false;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const r = route[i]!;
    if (s.kind === 'param') continue;
    if (isPlaceholder(r)) return false;
    if (s.kind === 'lit' ? s.value !== r : !s.re.test(r)) return false;
  }
  return true;
}

function rank(a: CompiledOperation, b: CompiledOperation): number {
  if (a.params !== b.params) return a.params - b.params;
  for (let i = 0; i < a.segs.length; i++) {
    const x = a.segs[i]!.kind === 'lit' ? 0 : 1;
    const y = b.segs[i]!.kind === 'lit' ? 0 : 1;
    if (x !== y) return x - y;
  }
  return 0;
}

function hostMatches(spec: ImportedSpec, host: string): boolean {
  if (spec.hosts.length === 0) return true;
  return spec.hosts.some((h) => h === host || (h.startsWith('*.') && host.endsWith(h.slice(1))));
}

export class OperationIndex {
  private readonly ops: CompiledOperation[] = [];
  /** Operations by number of path segments (a template only matches routes of its length). */
  private readonly byLength = new Map<number, CompiledOperation[]>();

  constructor(specs: readonly ImportedSpec[]) {
    for (const spec of specs) {
      for (const op of spec.operations) {
        for (const fullPath of op.fullPaths) {
          const segs = compilePath(fullPath);
          const c = { spec, op, fullPath, segs, params: segs.filter((s) => s.kind !== 'lit').length };
          this.ops.push(c);
          const list = this.byLength.get(segs.length) ?? [];
          list.push(c);
          this.byLength.set(segs.length, list);
        }
      }
    }
  }

  /** Best operation for host + method + route; `pathOnly` is the best path match ignoring the method. */
  match(
    host: string,
    method: string,
    route: string,
  ): { best?: CompiledOperation; pathOnly?: CompiledOperation } {
    const segs = route === '/' ? [''] : route.split('/').slice(1);
    const h = host.toLowerCase();
    const m = method.toUpperCase();
    let best: CompiledOperation | undefined;
    let pathOnly: CompiledOperation | undefined;
    for (const c of this.byLength.get(segs.length) ?? []) {
      if (!hostMatches(c.spec, h) || !matchSegs(c.segs, segs)) continue;
      if (!pathOnly || rank(c, pathOnly) < 0) pathOnly = c;
      const methodOk = c.op.method === m || (m === 'HEAD' && c.op.method === 'GET');
      if (methodOk && (!best || rank(c, best) < 0 || (rank(c, best) === 0 && c.op.method === m))) best = c;
    }
    return { ...(best ? { best } : {}), ...(pathOnly ? { pathOnly } : {}) };
  }

  get operations(): readonly CompiledOperation[] {
    return this.ops;
  }
}
