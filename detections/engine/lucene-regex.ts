/**
 * RE2 (unanchored search) → Lucene regexp (whole-value match) for the common subset:
 * literals, escapes, `.`, classes, `\d \w \s` (and negations), quantifiers, groups,
 * alternation, `^`/`$` at the edges (also inside a leading/trailing group's branches), and a
 * leading `(?i)`. Anything else throws `Untranslatable`; the caller then uses a superset query
 * and filters in the worker with re2js.
 */
export class Untranslatable extends Error {}

type Node =
  | { t: 'lit'; s: string }
  | { t: 'raw'; s: string }
  | { t: 'start' }
  | { t: 'end' }
  | { t: 'group'; alt: Node[][] }
  | { t: 'rep'; node: Node; q: string };

const CLASS_ESC: Record<string, string> = {
  d: '0-9',
  w: 'a-zA-Z0-9_',
  s: ' \t\n\r\f\v',
};

function litEsc(c: string): string {
  return /[a-zA-Z0-9_]/.test(c) ? c : `\\${c}`;
}

function controlChar(c: string): string | undefined {
  return ({ n: '\n', t: '\t', r: '\r', f: '\f', v: '\v' } as Record<string, string>)[c];
}

export function re2ToLucene(pattern: string): { regexp: string; caseInsensitive: boolean } {
  let src = pattern;
  let caseInsensitive = false;
  const flags = /^\(\?([a-zA-Z]+)\)/.exec(src);
  if (flags) {
    if (flags[1] !== 'i') throw new Untranslatable(`flags ${flags[1]}`);
    caseInsensitive = true;
    src = src.slice(flags[0].length);
  }
  let i = 0;
  const parseAlt = (): Node[][] => {
    const alt: Node[][] = [[]];
    while (i < src.length) {
      const c = src[i]!;
      if (c === ')') break;
      if (c === '|') {
        i++;
        alt.push([]);
        continue;
      }
      const seq = alt[alt.length - 1]!;
      let node: Node;
      if (c === '(') {
        i++;
        if (src[i] === '?') {
          if (src[i + 1] === ':') i += 2;
          else throw new Untranslatable('group flags');
        }
        const inner = parseAlt();
        if (src[i] !== ')') throw new Untranslatable('unbalanced');
        i++;
        node = { t: 'group', alt: inner };
      } else if (c === '^') {
        i++;
        node = { t: 'start' };
      } else if (c === '$') {
        i++;
        node = { t: 'end' };
      } else if (c === '.') {
        i++;
        node = { t: 'raw', s: '.' };
      } else if (c === '[') {
        node = { t: 'raw', s: parseClass() };
      } else if (c === '\\') {
        const d = src[i + 1];
        if (d === undefined) throw new Untranslatable('trailing backslash');
        i += 2;
        const lower = d.toLowerCase();
        if (lower in CLASS_ESC) node = { t: 'raw', s: `[${d === lower ? '' : '^'}${CLASS_ESC[lower]}]` };
        else if (controlChar(d)) node = { t: 'lit', s: controlChar(d)! };
        else if (/[a-zA-Z0-9]/.test(d)) throw new Untranslatable(`escape \\${d}`);
        else node = { t: 'lit', s: d };
      } else if ('*+?{'.includes(c)) {
        throw new Untranslatable('dangling quantifier');
      } else {
        i++;
        node = { t: 'lit', s: c };
      }
      // quantifier
      const q = /^(\*|\+|\?|\{\d+(,\d*)?\})\??/.exec(src.slice(i));
      if (q) {
        if (node.t === 'start' || node.t === 'end') throw new Untranslatable('quantified anchor');
        i += q[0].length;
        node = { t: 'rep', node, q: q[1]! };
      }
      seq.push(node);
    }
    return alt;
  };
  const parseClass = (): string => {
    // src[i] === '['
    let out = '[';
    i++;
    if (src[i] === '^') {
      out += '^';
      i++;
    }
    let first = true;
    while (i < src.length && (src[i] !== ']' || first)) {
      first = false;
      const c = src[i]!;
      if (c === '[') throw new Untranslatable('nested class');
      if (c === '\\') {
        const d = src[i + 1];
        if (d === undefined) throw new Untranslatable('trailing backslash');
        i += 2;
        const lower = d.toLowerCase();
        if (lower in CLASS_ESC) {
          if (d !== lower) throw new Untranslatable('negated class escape in class');
          out += CLASS_ESC[lower];
        } else if (controlChar(d)) out += controlChar(d);
        else if (/[a-zA-Z0-9]/.test(d)) throw new Untranslatable(`escape \\${d}`);
        else out += `\\${d}`;
        continue;
      }
      if (c === '-' && src[i + 1] !== ']' && out !== '[' && out !== '[^') out += '-';
      else out += /[a-zA-Z0-9 ]/.test(c) ? c : `\\${c}`;
      i++;
    }
    if (src[i] !== ']') throw new Untranslatable('unterminated class');
    i++;
    return `${out}]`;
  };
  const alt = parseAlt();
  if (i !== src.length) throw new Untranslatable('unbalanced )');
  return { regexp: renderSearch(alt), caseInsensitive };
}

function hasAnchor(n: Node): boolean {
  if (n.t === 'start' || n.t === 'end') return true;
  if (n.t === 'group') return n.alt.some((s) => s.some(hasAnchor));
  if (n.t === 'rep') return hasAnchor(n.node);
  return false;
}

function render(seq: Node[]): string {
  return seq
    .map((n) => {
      switch (n.t) {
        case 'lit':
          return litEsc(n.s);
        case 'raw':
          return n.s;
        case 'group':
          return `(${n.alt.map(render).join('|')})`;
        case 'rep':
          return render([n.node]) + n.q;
        default:
          throw new Untranslatable('anchor inside the pattern');
      }
    })
    .join('');
}

/** A sequence searched anywhere: `.*` on the sides that are not anchored. */
function searchSeq(seq: Node[], freeStart: boolean, freeEnd: boolean): string {
  const first = seq[0];
  if (freeStart && first) {
    if (first.t === 'start') return searchSeq(seq.slice(1), false, freeEnd);
    if (first.t === 'group' && hasAnchor(first)) {
      return `(${first.alt.map((b) => searchSeq([...b, ...seq.slice(1)], true, freeEnd)).join('|')})`;
    }
  }
  const last = seq[seq.length - 1];
  if (freeEnd && last) {
    if (last.t === 'end') return searchSeq(seq.slice(0, -1), freeStart, false);
    if (last.t === 'group' && hasAnchor(last) && seq.length > 1) {
      return `(${last.alt.map((b) => searchSeq([...seq.slice(0, -1), ...b], freeStart, true)).join('|')})`;
    }
  }
  return `${freeStart ? '.*' : ''}${render(seq)}${freeEnd ? '.*' : ''}`;
}

function renderSearch(alt: Node[][]): string {
  return alt.map((s) => `(${searchSeq(s, true, true)})`).join('|');
}
