/**
 * Detection rules: stored text with revisions (admin), validation with line/column
 * diagnostics, test over supplied events and backtest over a past range (analyst), enable /
 * disable / run now (admin), run history and degraded status (viewer).
 */
import { isAbsolute, relative } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { IncidentSchema } from '../../core/schema/incident.ts';
import { type CatalogueEntry, ruleCatalogue, ruleText } from '../../detections/rule-set.ts';
import { type Diagnostic, loadRuleFiles, type RuleIR } from '../../parser/index.ts';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';
import { sandboxed } from '../rules/sandbox-problems.ts';
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

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T, description: string) =>
  Type.Union([schema, Type.Null()], { description });

/** Every rule, whether it comes from a rule file or was stored through the API. */
const RuleSchema = Type.Object({
  id: Type.String(),
  source: Type.Union([Type.Literal('file'), Type.Literal('api')], {
    description:
      'file: a rule file (the built-in pack or your own files), read-only here but can be enabled and disabled; api: stored through this API, with revisions.',
  }),
  file: Nullable(
    Type.String(),
    'source file: the rule file it comes from; source api: the file rule it replaces (same id), if any.',
  ),
  revision: Nullable(Type.Integer(), 'API revision (source api); null for file rules.'),
  version: Type.String({ description: 'Content hash of the rule (changes with its text).' }),
  title: Type.String(),
  kind: Type.String(),
  severity: Type.String(),
  enabled: Type.Boolean({ description: 'Whether the rule is scheduled.' }),
  text: Type.String(),
  created_at: Nullable(Timestamp, 'When it was stored (source api).'),
  created_by: Nullable(Type.String(), 'Who stored it (source api).'),
  updated_at: Nullable(Timestamp, 'Last change through the API (a file rule: last enable or disable).'),
  updated_by: Nullable(Type.String(), 'Who made the last change through the API.'),
});

const RuleSummarySchema = Type.Omit(RuleSchema, ['text']);

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
  incidents_folded: Type.Optional(
    Type.Integer({ description: 'Detections folded into an open incident of their entity.' }),
  ),
  incidents_excepted: Type.Optional(
    Type.Integer({ description: 'Detections dropped by the rule’s exceptions (GET /api/v1/exceptions).' }),
  ),
  es_ms: Type.Number(),
  worker_ms: Type.Number(),
  cells_read: Type.Optional(
    Type.Integer({ description: '(group, bucket) cells read from aggregations: the run’s cost.' }),
  ),
  events_read: Type.Optional(
    Type.Integer({
      description:
        'Events read from Elasticsearch (sequence rules: the new events only when the rule’s state was kept, docs/partials.md).',
    }),
  ),
  partials: Type.Optional(
    Type.Object(
      {
        chunks: Type.Integer({ description: 'Days read from rule partials.' }),
        raw_chunks: Type.Integer({
          description: 'Days read from the raw events (partials missing or short).',
        }),
        reread_groups: Type.Integer({
          description: 'Groups re-read from raw events for exact distinct values (a partial held a sketch).',
        }),
      },
      { description: 'How the run used rule partials (docs/partials.md), when it read any.' },
    ),
  ),
  note: Type.Optional(
    Type.String({
      description:
        'What the run could not decide although nothing failed (e.g. history it lacks), and which days it read from raw events instead of partials.',
    }),
  ),
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

const displayPath = (file: string) => {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') || isAbsolute(rel) ? file : rel;
};

type RuleView = Omit<
  StoredRule,
  'deleted' | 'revision' | 'created_at' | 'created_by' | 'updated_at' | 'updated_by'
> & {
  source: 'file' | 'api';
  file: string | null;
  revision: number | null;
  created_at: string | null;
  created_by: string | null;
  updated_at: string | null;
  updated_by: string | null;
};

/** An API-stored rule as the API shows it (`replaces`: the file rule of the same id). */
function storedView(stored: StoredRule, replaces?: RuleIR): RuleView {
  const { deleted: _d, ...rule } = stored;
  return { ...rule, source: 'api', file: replaces ? displayPath(replaces.source.file) : null };
}

function view(entry: CatalogueEntry): RuleView {
  if (entry.stored) return storedView(entry.stored, entry.file);
  const rule = entry.file!;
  return {
    id: rule.id,
    source: 'file',
    file: displayPath(rule.source.file),
    revision: null,
    version: rule.version,
    title: rule.title,
    kind: rule.kind,
    severity: rule.severity,
    enabled: entry.enabled,
    text: ruleText(rule),
    created_at: null,
    created_by: null,
    updated_at: entry.state?.updated_at ?? null,
    updated_by: entry.state?.updated_by ?? null,
  };
}

const summary = ({ text: _t, ...rule }: RuleView) => rule;

/** How long the rule files read for listing are reused before being read again. */
const FILE_RULES_TTL_MS = 10_000;

const MAX_PREVIEW_MS = 31 * 86_400_000;

export function ruleRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const store = ctx.rules;
  const detection = ctx.ports.detection;

  /** Rule text parsed and checked in the rule sandbox, off the thread that serves requests. */
  const parse = (text: string, file = 'request.gwr') =>
    sandboxed('check', () =>
      ctx.sandbox.check.run({
        kind: 'parse-rules',
        text,
        file,
        diskReaders: ctx.ports.ruleReaders !== undefined,
        lists: ctx.config.detections.lists,
      }),
    );

  /** A preview over stored events: in a sandbox worker when there is one, else through the port. */
  const preview = (rule: RuleIR, range: { start: number; end: number }) =>
    ctx.sandbox.preview
      ? sandboxed('preview', () => ctx.sandbox.preview!.run({ kind: 'preview', rule, range }))
      : detection.preview(rule, range);

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
  const parseOrFail = async (text: string, exactlyOne: boolean): Promise<RuleIR[]> => {
    const result = await parse(text);
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

  // The rule files the detection workers load (the built-in pack and the operator's own).
  let files: { rules: RuleIR[]; until: number } | undefined;
  const fileRules = async (): Promise<RuleIR[]> => {
    if (!files || files.until < Date.now()) {
      const loaded = await loadRuleFiles(ctx.config.detections.rulePaths, {
        lists: ctx.config.detections.lists,
      });
      files = { rules: loaded.rules, until: Date.now() + FILE_RULES_TTL_MS };
    }
    return files.rules;
  };
  const catalogue = async () => ruleCatalogue(await fileRules(), store);
  /** The rule of an id, from a file or stored, or a 404 problem. */
  const find = async (id: string): Promise<CatalogueEntry> => {
    const entry = (await catalogue()).find((e) => e.id === id);
    if (!entry) throw new HttpProblem(404, 'rule-not-found', `rule ${id} does not exist`);
    return entry;
  };
  const fileOnly = (entry: CatalogueEntry, what: string) =>
    new HttpProblem(
      409,
      'rule-from-file',
      `rule ${entry.id} comes from the rule file ${displayPath(entry.file!.source.file)}; it cannot be ${what} through the API. Disable it (POST /api/v1/rules/${entry.id}/disable), or store a rule with the same id (POST /api/v1/rules) to replace it.`,
    );

  return async (app) => {
    app.get(
      '/rules',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary:
            'Every rule: from rule files (the built-in pack and your own) and stored through the API, with source, version and enabled state (without their text).',
          response: { 200: Type.Object({ items: Type.Array(RuleSummarySchema) }) },
        },
      },
      async () => ({ items: (await catalogue()).map((e) => summary(view(e))) }),
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
            422: problemResponse(422),
          },
        },
      },
      async (request) => {
        const result = await parse(request.body.text);
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
        const rules = await parseOrFail(request.body.text, false);
        // Rules over supplied events are CPU work too: in the sandbox, with its budget.
        const incidents = await sandboxed('check', () =>
          ctx.sandbox.check.run({ kind: 'test', rules, events: request.body.events, now: Date.now() }),
        );
        return { incidents };
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
              incidents: Type.Array(IncidentSchema, {
                description: 'What the rule would open: its detections after suppression and folding.',
              }),
              raw_detections: Type.Array(IncidentSchema, {
                description: 'Every detection, each as the incident it would be on its own.',
              }),
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
          const entry = await find(rule_id);
          // A file rule is previewed as loaded (its includes and lists resolved from its file).
          if (!entry.stored) return preview({ ...entry.file!, enabled: true }, { start, end });
          ruleText = entry.stored.text;
        }
        const [rule] = await parseOrFail(ruleText!, true);
        return preview(rule!, { start, end });
      },
    );

    app.get(
      '/rules/:id',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: 'A rule (from a file or stored) with its text and run status.',
          params: RuleIdParams,
          response: { 200: Type.Object({ rule: RuleSchema, status: RuleStatusSchema }) },
        },
      },
      async (request) => {
        const entry = await find(request.params.id);
        return { rule: view(entry), status: await detection.status(entry.id) };
      },
    );

    app.post(
      '/rules',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['rules'],
          summary:
            'Store a new rule (one rule per text; its id comes from the text). A rule with the id of a file rule replaces it until deleted.',
          body: Type.Object(
            { text: RuleText, enabled: Type.Optional(Type.Boolean({ default: true })) },
            { additionalProperties: false },
          ),
          response: { 201: RuleSchema, 409: problemResponse(409), 422: problemResponse(422) },
        },
      },
      async (request, reply) => {
        const [rule] = await parseOrFail(request.body.text, true);
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
          const replaces = (await fileRules()).find((r) => r.id === stored.id);
          return reply
            .code(201)
            .header('location', `/api/v1/rules/${stored.id}`)
            .send(storedView(stored, replaces));
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
          summary:
            'Replace the text of a stored rule (new revision). A file rule is not changed here: 409 (store a rule with its id to replace it).',
          params: RuleIdParams,
          body: Type.Object(
            { text: RuleText, expected_revision: Type.Optional(Type.Integer({ minimum: 1 })) },
            { additionalProperties: false },
          ),
          response: { 200: RuleSchema, 409: problemResponse(409), 422: problemResponse(422) },
        },
      },
      async (request) => {
        const [rule] = await parseOrFail(request.body.text, true);
        if (rule!.id !== request.params.id) {
          throw unprocessable(`the text defines rule ${rule!.id}, not ${request.params.id}`, []);
        }
        const entry = await find(request.params.id);
        if (!entry.stored) throw fileOnly(entry, 'changed');
        try {
          const before = entry.stored;
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
          return storedView(stored, entry.file);
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
          summary:
            'Delete a stored rule (its revisions are kept; a file rule it replaced runs again). File rules cannot be deleted: 409 (disable them).',
          params: RuleIdParams,
          response: { 204: Type.Null({ description: 'Deleted.' }), 409: problemResponse(409) },
        },
      },
      async (request, reply) => {
        const entry = await find(request.params.id);
        if (!entry.stored) throw fileOnly(entry, 'deleted');
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
            summary: `${enabled ? 'Enable' : 'Disable'} a rule (stored or from a file; a file is left as it is).`,
            params: RuleIdParams,
            response: { 200: RuleSchema },
          },
        },
        async (request) => {
          const entry = await find(request.params.id);
          const action = enabled ? 'rule.enable' : 'rule.disable';
          if (!entry.stored) {
            const state = await store.setFileEnabled(entry.id, enabled, actorOf(request));
            await audit(ctx, request, action, 'rule', entry.id, {
              source: 'file',
              file: displayPath(entry.file!.source.file),
            });
            await changed(entry.id);
            return view({ ...entry, state, enabled });
          }
          try {
            const stored = await store.setEnabled(entry.id, enabled, actorOf(request));
            await audit(ctx, request, action, 'rule', stored.id, { revision: stored.revision });
            await changed(stored.id);
            return storedView(stored, entry.file);
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
        if (items.length === 0) {
          const entry = await find(request.params.id);
          if (entry.source === 'file') {
            throw new HttpProblem(
              404,
              'rule-not-found',
              `rule ${entry.id} comes from the rule file ${displayPath(entry.file!.source.file)} and has no API revisions`,
            );
          }
        }
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
          summary: 'Run a rule (stored or from a file) now over its normal range.',
          params: RuleIdParams,
          response: { 200: RunRecordSchema },
        },
      },
      async (request) => {
        const rule = await find(request.params.id);
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
          response: { 200: Type.Object({ status: RuleStatusSchema, items: Type.Array(RunRecordSchema) }) },
        },
      },
      async (request) => {
        const rule = await find(request.params.id);
        const [status, runs] = await Promise.all([
          detection.status(rule.id),
          detection.runHistory(rule.id, request.query.limit ?? 50),
        ]);
        return { status, items: runs };
      },
    );
  };
}
