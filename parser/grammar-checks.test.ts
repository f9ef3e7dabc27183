/**
 * Chevrotain's own checks of the token definitions and of the grammar (ambiguous alternatives,
 * left recursion, unreachable or duplicate definitions), which the shared lexer and parser skip
 * at start-up: a definition error fails here instead.
 */
import { describe, expect, it } from 'vitest';
import { RuleGrammar } from './grammar.ts';
import { makeLexer } from './lexer.ts';

describe('grammar checks', () => {
  it('the lexer definitions pass Chevrotain’s validations', () => {
    const lexer = makeLexer(true);
    expect(lexer.lexerDefinitionErrors).toEqual([]);
    expect(lexer.tokenize('rule a { title "t" }').errors).toEqual([]);
  });

  it('the grammar passes Chevrotain’s self-analysis checks (it throws on a definition error)', () => {
    expect(() => new RuleGrammar(true)).not.toThrow();
  });
});
