/**
 * Detection rules: stored text with revisions (admin), validation with line/column
 * diagnostics, test over supplied events and backtest over a past range (analyst), enable /
 * disable / run now (admin), run history and degraded status (viewer).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { IncidentSchema } from '../../core/schema/incident.ts';
import { type Diagnostic, parseRules, type RuleIR } from '../../parser/index.ts';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';
import { RuleConflictError, RuleExistsError, RuleNotFoundError, type StoredRule } from '../rules/store.ts';
import { problemResponse, Timestamp } from '../schemas.ts';
import { actorOf, audit } from './util.ts';

export const EXAMPLE_RULE = `rule admin-probe {
  title "Admin route probed"
  severity medium
  where gatewatch.route startswith "/admin" and http.response.status_code >= 400
  incident {
    entities ip: source.ip
  }
}
`;

const RuleText = Type.String({
  minLength: 1,
  maxLength: 262_144,
  description: 'Rule language source.',
  examples: [EXAMPLE_RULE],
});

const DiagnosticSchema = Type.Object({
  file: Type.String(),
  line: Type.Integer(),
  column: Type.Integer(),
  endLine: Type.Optional(Type.Integer()),
  endColumn: Type.Optional(Type.Integer()),
  severity: Type.Union([Type.Literal('error'), Type.Literal('warning')]),
  code: Type.String(),
  message: Type.String(),
  hint: Type.Optional(Type.String()),
  excerpt: Type.String(),
});

const StoredRuleSchema = Type.Object({
  id: Type.String(),
  revision: Type.Integer(),
  version: Type.String(),
  title: Type.String(),
  kind: Type.String(),
  severity: Type.String(),
  enabled: Type.Boolean(),
  text: Type.String(),
  created_at: Timestamp,
  created_by: Type.String(),
  updated_at: Timestamp,
  updated_by: Type.String(),
});

const RuleSummarySchema = Type.Omit(StoredRuleSchema, ['text']);

const RevisionSchema = Type.Object({
  id: Type.String(),
  revision: Type.Integer(),
  version: Type.String(),
  change: Type.String(),
  text: Type.String(),
  enabled: Type.Boolean(),
  at: Timestamp,
  by: Type.String(),
});

export const RunRecordSchema = Type.Object({
  id: Type.String(),
  rule_id: Type.String(),
  rule_version: Type.String(),
  started_at: Timestamp,
  finished_at: Timestamp,
  duration_ms: Type.Number(),
  range_start: Timestamp,
  range_end: Timestamp,
  outcome: Type.Union([
    Type.Literal('ok'),
    Type.Literal('degraded'),
    Type.Literal('error'),
    Type.Literal('skipped'),
  ]),
  detections: Type.Integer(),
  incidents_created: Type.Integer(),
  incidents_updated: Type.Integer(),
  incidents_suppressed: Type.Integer(),
  es_ms: Type.Number(),
  worker_ms: Type.Number(),
  degraded_reason: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
});

const RuleStatusSchema = Type.Object({
  degraded: Type.Boolean(),
  reason: Type.Optional(Type.String()),
  last_run: Type.Optional(RunRecordSchema),
});

const RuleIdParams = Type.Object(
  { id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$', description: 'Rule id.' }) },
  { additionalProperties: false },
);

const publicRule = ({ deleted: _d, ...rule }: StoredRule) => rule;
const summary = ({ deleted: _d, text: _t, ...rule }: StoredRule) => rule;

const MAX_PREVIEW_MS = 31 * 86_400_000;

export function ruleRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const store = ctx.rules;
  const detection = ctx.ports.detection;

  const parse = (text: string, file = 'request.gwr') =>
    parseRules(text, { file, ...(ctx.ports.ruleReaders ?? {}) });

  const unprocessable = (detail: string, diagnostics: Diagnostic[]) =>
    new HttpProblem(422, 'invalid-rule', detail, {
      errors: diagnostics
        .filter((d) => d.severity === 'error')
        .map((d) => ({
          field: '/body/text',
          message: `${d.code}: ${d.message}${d.hint ? ` (${d.hint})` : ''}`,
          line: d.line,
          column: d.column,
        })),
    });

  /** Exactly the rules in `text`, or a 422 listing the errors with positions. */
  const parseOrFail = (text: string, exactlyOne: boolean): RuleIR[] => {
    const result = parse(text);
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0) throw unprocessable(`the rule text has ${errors.length} error(s)`, errors);
    if (result.rules.length === 0) throw unprocessable('the text defines no rule', []);
    if (exactlyOne && result.rules.length !== 1) {
      throw unprocessable(`a stored rule is one rule per text; this text defines ${result.rules.length}`, []);
    }
    return result.rules;
  };

  const content = (rule: RuleIR, text: string) => ({
    id: rule.id,
    version: rule.version,
    title: rule.title,
    kind: rule.kind,
    severity: rule.severity,
    text,
  });

  const mapError = (err: unknown): never => {
    if (err instanceof RuleNotFoundError) throw new HttpProblem(404, 'rule-not-found', err.message);
    if (err instanceof RuleExistsError) throw new HttpProblem(409, 'rule-exists', err.message);
    if (err instanceof RuleConflictError) throw new HttpProblem(409, 'concurrent-change', err.message);
    throw err;
  };

  const changed = async (id: string) => {
    await detection.rulesChanged?.(id);
  };

  return async (app) => {
    app.get(
      '/rules',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: 'List stored rules (without their text).',
          response: { 200: Type.Object({ items: Type.Array(RuleSummarySchema) }) },
        },
      },
      async () => ({ items: (await store.list()).map(summary) }),
    );

    app.post(
      '/rules/validate',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['rules'],
          summary: 'Parse and check rule text; diagnostics carry line and column.',
          body: Type.Object({ text: RuleText }, { additionalProperties: false }),
          response: {
            200: Type.Object({
              valid: Type.Boolean(),
              rules: Type.Array(
                Type.Object({ id: Type.String(), kind: Type.String(), title: Type.String() }),
              ),
              diagnostics: Type.Array(DiagnosticSchema),
            }),
          },
        },
      },
      async (request) => {
        const result = parse(request.body.text);
        return {
          valid: !result.diagnostics.some((d) => d.severity === 'error'),
          rules: result.rules.map((r) => ({ id: r.id, kind: r.kind, title: r.title })),
          diagnostics: result.diagnostics,
        };
      },
    );

    app.post(
      '/rules/test',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['rules'],
          summary:
            'Run rule text over supplied events; returns the incidents it would create (nothing is written).',
          body: Type.Object(
            {
              text: RuleText,
              events: Type.Array(Type.Record(Type.String(), Type.Unknown()), { maxItems: 10_000 }),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ incidents: Type.Array(IncidentSchema) }),
            422: problemResponse(422),
          },
        },
      },
      async (request) => {
        const rules = parseOrFail(request.body.text, false);
        return { incidents: await detection.test(rules, request.body.events) };
      },
    );

    app.post(
      '/rules/preview',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['rules'],
          summary:
            'Backtest a stored rule (rule_id) or rule text over a past range without writing incidents.',
          body: Type.Object(
            {
              rule_id: Type.Optional(RuleIdParams.properties.id),
              text: Type.Optional(RuleText),
              from: Timestamp,
              to: Timestamp,
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              incidents: Type.Array(IncidentSchema),
              detections: Type.Integer(),
              degraded: Type.Optional(Type.Object({ reason: Type.String() })),
            }),
            422: problemResponse(422),
          },
        },
      },
      async (request) => {
        const { rule_id, text, from, to } = request.body;
        if ((rule_id === undefined) === (text === undefined)) {
          throw new HttpProblem(400, 'validation', 'give exactly one of rule_id and text', {
            errors: [{ field: '/body', message: 'exactly one of rule_id, text' }],
          });
        }
        const start = Date.parse(from);
        const end = Date.parse(to);
        if (!(end > start) || end - start > MAX_PREVIEW_MS) {
          throw new HttpProblem(400, 'validation', '`to` must be after `from`, at most 31 days later', {
            errors: [{ field: '/body/to', message: 'after from, within 31 days' }],
          });
        }
        let ruleText = text;
        if (rule_id !== undefined) {
          const stored = await store.get(rule_id);
          if (!stored) throw new HttpProblem(404, 'rule-not-found', `rule ${rule_id} does not exist`);
          ruleText = stored.text;
        }
        const [rule] = parseOrFail(ruleText!, true);
        return detection.preview(rule!, { start, end });
      },
    );

    app.get(
      '/rules/:id',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: 'A stored rule with its text and run status.',
          params: RuleIdParams,
          response: { 200: Type.Object({ rule: StoredRuleSchema, status: RuleStatusSchema }) },
        },
      },
      async (request) => {
        const rule = await store.get(request.params.id);
        if (!rule) throw new HttpProblem(404, 'rule-not-found', `rule ${request.params.id} does not exist`);
        return { rule: publicRule(rule), status: await detection.status(rule.id) };
      },
    );

    app.post(
      '/rules',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['rules'],
          summary: 'Store a new rule (one rule per text; its id comes from the text).',
          body: Type.Object(
            { text: RuleText, enabled: Type.Optional(Type.Boolean({ default: true })) },
            { additionalProperties: false },
          ),
          response: { 201: StoredRuleSchema, 409: problemResponse(409), 422: problemResponse(422) },
        },
      },
      async (request, reply) => {
        const [rule] = parseOrFail(request.body.text, true);
        try {
          const stored = await store.create(
            content(rule!, request.body.text),
            request.body.enabled ?? rule!.enabled,
            actorOf(request),
          );
          await audit(ctx, request, 'rule.create', 'rule', stored.id, {
            revision: stored.revision,
            version: stored.version,
          });
          await changed(stored.id);
          return reply.code(201).header('location', `/api/v1/rules/${stored.id}`).send(publicRule(stored));
        } catch (err) {
          mapError(err);
        }
      },
    );

    app.put(
      '/rules/:id',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['rules'],
          summary: 'Replace the text of a rule (new revision).',
          params: RuleIdParams,
          body: Type.Object(
            { text: RuleText, expected_revision: Type.Optional(Type.Integer({ minimum: 1 })) },
            { additionalProperties: false },
          ),
          response: { 200: StoredRuleSchema, 409: problemResponse(409), 422: problemResponse(422) },
        },
      },
      async (request) => {
        const [rule] = parseOrFail(request.body.text, true);
        if (rule!.id !== request.params.id) {
          throw unprocessable(`the text defines rule ${rule!.id}, not ${request.params.id}`, []);
        }
        try {
          const before = await store.get(request.params.id);
          const stored = await store.update(
            content(rule!, request.body.text),
            actorOf(request),
            request.body.expected_revision,
          );
          await audit(ctx, request, 'rule.update', 'rule', stored.id, {
            from_revision: before?.revision,
            revision: stored.revision,
            version: stored.version,
          });
          await changed(stored.id);
          return publicRule(stored);
        } catch (err) {
          mapError(err);
        }
      },
    );

    app.delete(
      '/rules/:id',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['rules'],
          summary: 'Delete a rule (its revisions are kept).',
          params: RuleIdParams,
          response: { 204: Type.Null({ description: 'Deleted.' }) },
        },
      },
      async (request, reply) => {
        try {
          const stored = await store.delete(request.params.id, actorOf(request));
          await audit(ctx, request, 'rule.delete', 'rule', stored.id, { revision: stored.revision });
          await changed(stored.id);
          return reply.code(204).send(null);
        } catch (err) {
          mapError(err);
        }
      },
    );

    for (const enabled of [true, false]) {
      app.post(
        `/rules/:id/${enabled ? 'enable' : 'disable'}`,
        {
          config: { access: 'admin' },
          schema: {
            tags: ['rules'],
            summary: `${enabled ? 'Enable' : 'Disable'} a rule.`,
            params: RuleIdParams,
            response: { 200: StoredRuleSchema },
          },
        },
        async (request) => {
          try {
            const stored = await store.setEnabled(request.params.id, enabled, actorOf(request));
            await audit(ctx, request, enabled ? 'rule.enable' : 'rule.disable', 'rule', stored.id, {
              revision: stored.revision,
            });
            await changed(stored.id);
            return publicRule(stored);
          } catch (err) {
            mapError(err);
          }
        },
      );
    }

    app.get(
      '/rules/:id/revisions',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: 'Every revision of a rule, newest first.',
          params: RuleIdParams,
          response: { 200: Type.Object({ items: Type.Array(RevisionSchema) }) },
        },
      },
      async (request) => {
        const items = await store.revisions(request.params.id);
        if (items.length === 0)
          throw new HttpProblem(404, 'rule-not-found', `rule ${request.params.id} does not exist`);
        return { items };
      },
    );

    app.get(
      '/rules/:id/revisions/:revision',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: 'One revision of a rule.',
          params: Type.Object(
            {
              id: RuleIdParams.properties.id,
              revision: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }),
            },
            { additionalProperties: false },
          ),
          response: { 200: RevisionSchema },
        },
      },
      async (request) => {
        const rev = await store.revision(request.params.id, request.params.revision);
        if (!rev)
          throw new HttpProblem(
            404,
            'revision-not-found',
            `rule ${request.params.id} has no revision ${request.params.revision}`,
          );
        return rev;
      },
    );

    app.post(
      '/rules/:id/run',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['rules'],
          summary: 'Run a stored rule now over its normal range.',
          params: RuleIdParams,
          response: { 200: RunRecordSchema },
        },
      },
      async (request) => {
        const rule = await store.get(request.params.id);
        if (!rule) throw new HttpProblem(404, 'rule-not-found', `rule ${request.params.id} does not exist`);
        const record = await detection.runNow(rule.id);
        await audit(ctx, request, 'rule.run', 'rule', rule.id, {
          run_id: record.id,
          outcome: record.outcome,
        });
        return record;
      },
    );

    app.get(
      '/rules/:id/runs',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: 'Run history (newest first) and degraded status.',
          params: RuleIdParams,
          querystring: Type.Object(
            { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ status: RuleStatusSchema, runs: Type.Array(RunRecordSchema) }) },
        },
      },
      async (request) => {
        const rule = await store.get(request.params.id);
        if (!rule) throw new HttpProblem(404, 'rule-not-found', `rule ${request.params.id} does not exist`);
        const [status, runs] = await Promise.all([
          detection.status(rule.id),
          detection.runHistory(rule.id, request.query.limit ?? 50),
        ]);
        return { status, runs };
      },
    );
  };
}
