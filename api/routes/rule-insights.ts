/**
 * What the rules page shows beside each rule: runs and detections per day, and the rule's
 * test cases (the `tests/` files next to the rule files), run against the rule as it is or
 * against draft text from the editor before it is saved.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { loadRuleSetFrom, ruleCatalogue, ruleText } from '../../detections/rule-set.ts';
import {
  findRuleTestFiles,
  loadRuleTests,
  type RuleTestResult,
  runRuleTests,
} from '../../detections/rule-tests.ts';
import { loadRuleFiles, parseRules, type RuleIR } from '../../parser/index.ts';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';
import { problemResponse } from '../schemas.ts';

const RuleIdParams = Type.Object(
  { id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$', description: 'Rule id.' }) },
  { additionalProperties: false },
);

const TestResultSchema = Type.Object({
  name: Type.String(),
  file: Type.String(),
  passed: Type.Boolean(),
  events: Type.Integer({ description: 'Input events of the case.' }),
  expected: Type.Integer({ description: 'Incidents the case expects.' }),
  actual: Type.Integer({ description: 'Incidents the rule produced.' }),
  diff: Type.Array(
    Type.Object({
      kind: Type.Union([Type.Literal('missing'), Type.Literal('unexpected'), Type.Literal('different')]),
      group: Type.Record(Type.String(), Type.Unknown()),
      fields: Type.Optional(
        Type.Array(Type.Object({ field: Type.String(), expected: Type.Unknown(), actual: Type.Unknown() })),
      ),
    }),
  ),
  diagnostics: Type.Array(Type.String()),
});

const TestsResponse = Type.Object({
  rule_id: Type.String(),
  passed: Type.Integer(),
  failed: Type.Integer(),
  items: Type.Array(TestResultSchema),
});

const DAY = 86_400_000;

const displayPath = (file: string) => {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') || isAbsolute(rel) ? file : rel;
};

/**
 * A file rule as text that checks on its own: the `include` lines of its file (paths made
 * relative to the working directory, where rule text sent to the API is resolved from)
 * followed by the rule.
 */
export function standaloneText(rule: RuleIR): string {
  let file: string;
  try {
    file = readFileSync(rule.source.file, 'utf8');
  } catch {
    return ruleText(rule);
  }
  const includes = [...file.matchAll(/^\s*include\s+"((?:[^"\\]|\\.)*)"\s*$/gm)].map((m) => {
    const path = displayPath(resolve(dirname(rule.source.file), JSON.parse(`"${m[1]}"`) as string));
    return `include ${JSON.stringify(path)}`;
  });
  return `${includes.length > 0 ? `${includes.join('\n')}\n\n` : ''}${ruleText(rule).replace(/^\s*\n/, '')}`;
}

function view(r: RuleTestResult) {
  return {
    name: r.name,
    file: displayPath(r.file),
    passed: r.passed,
    events: r.events,
    expected: r.expected.length,
    actual: r.actual.length,
    diff: r.diff.map((d) =>
      d.kind === 'missing'
        ? { kind: d.kind, group: d.expected.group }
        : d.kind === 'unexpected'
          ? { kind: d.kind, group: d.actual.group }
          : { kind: d.kind, group: d.actual.group, fields: d.fields },
    ),
    diagnostics: r.diagnostics,
  };
}

export function ruleInsightRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const casesOf = (ruleId: string) =>
    loadRuleTests(findRuleTestFiles(ctx.config.detections.rulePaths).files).filter((c) => c.rule === ruleId);

  const run = async (rule: RuleIR) => {
    const results = await runRuleTests([{ ...rule, enabled: true }], casesOf(rule.id));
    const passed = results.filter((r) => r.passed).length;
    return { rule_id: rule.id, passed, failed: results.length - passed, items: results.map(view) };
  };

  return async (app) => {
    app.get(
      '/rules/activity',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: 'Runs, detections and failed runs per rule and UTC day, over the last `days` days.',
          querystring: Type.Object(
            { days: Type.Optional(Type.Integer({ minimum: 1, maximum: 92, default: 7 })) },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              from: Type.String({ format: 'date' }),
              to: Type.String({ format: 'date' }),
              items: Type.Array(
                Type.Object({
                  rule_id: Type.String(),
                  day: Type.String({ format: 'date' }),
                  runs: Type.Integer(),
                  detections: Type.Integer(),
                  failed: Type.Integer(),
                }),
              ),
            }),
          },
        },
      },
      async (request) => {
        const days = request.query.days ?? 7;
        const end = (Math.floor(Date.now() / DAY) + 1) * DAY;
        const start = end - days * DAY;
        const items = await ctx.ports.detection.dailyActivity({ start, end });
        return {
          from: new Date(start).toISOString().slice(0, 10),
          to: new Date(end - DAY).toISOString().slice(0, 10),
          items,
        };
      },
    );

    app.get(
      '/rules/:id/draft',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary:
            'The rule as editable text that checks on its own (a file rule with the includes of its file), for an editor.',
          params: RuleIdParams,
          response: {
            200: Type.Object({
              id: Type.String(),
              text: Type.String({
                description: 'Send it to /rules/validate, /rules/preview or POST /rules as it is.',
              }),
            }),
          },
        },
      },
      async (request) => {
        const files = await loadRuleFiles(ctx.config.detections.rulePaths);
        const entry = (await ruleCatalogue(files.rules, ctx.rules)).find((e) => e.id === request.params.id);
        if (!entry) throw new HttpProblem(404, 'rule-not-found', `rule ${request.params.id} does not exist`);
        return { id: entry.id, text: entry.stored ? entry.stored.text : standaloneText(entry.file!) };
      },
    );

    app.get(
      '/rules/:id/tests',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: "Run the rule's test cases (tests/ next to the rule files) against the rule as it runs.",
          params: RuleIdParams,
          response: { 200: TestsResponse },
        },
      },
      async (request) => {
        const { rules } = await loadRuleSetFrom(ctx.config, ctx.rules);
        const rule = rules.find((r) => r.id === request.params.id);
        if (!rule) throw new HttpProblem(404, 'rule-not-found', `rule ${request.params.id} does not exist`);
        return run(rule);
      },
    );

    app.post(
      '/rules/:id/tests',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['rules'],
          summary: "Run the rule's test cases against draft rule text (nothing is stored).",
          params: RuleIdParams,
          body: Type.Object(
            { text: Type.String({ minLength: 1, maxLength: 262_144, description: 'Rule language source.' }) },
            { additionalProperties: false },
          ),
          response: { 200: TestsResponse, 422: problemResponse(422) },
        },
      },
      async (request) => {
        const parsed = parseRules(request.body.text, {
          file: 'request.gwr',
          ...(ctx.ports.ruleReaders ?? {}),
        });
        const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
        const rule = parsed.rules.find((r) => r.id === request.params.id);
        if (errors.length > 0 || !rule) {
          throw new HttpProblem(
            422,
            'invalid-rule',
            errors.length > 0
              ? `the rule text has ${errors.length} error(s)`
              : `the text does not define rule ${request.params.id}`,
            {
              errors: errors.map((d) => ({
                field: '/body/text',
                message: `${d.code}: ${d.message}`,
                line: d.line,
                column: d.column,
              })),
            },
          );
        }
        return run(rule);
      },
    );
  };
}
