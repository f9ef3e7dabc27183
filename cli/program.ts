/**
 * The whole `gatewatch` command tree — every command, argument and option with its help — and
 * nothing else. A command's code (cli/commands/<area>.ts, with the Elasticsearch client,
 * BullMQ, Fastify, the rule parser … behind it) is imported only when that command runs, so
 * `--help` or `rules validate` on save costs what they need, not the whole product.
 */
import { Command } from 'commander';

/**
 * The action that imports `load()` and calls its export `name` with commander's arguments
 * (positional arguments, options, the command).
 */
function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K) {
  return async (...args: unknown[]): Promise<void> => {
    const action = (await load())[name] as (...a: unknown[]) => unknown;
    await action(...args);
  };
}

const detect = () => import('./commands/detect.ts');
const evaluate = () => import('./commands/eval.ts');
const incidents = () => import('./commands/incidents.ts');
const ingest = () => import('./commands/ingest.ts');
const keys = () => import('./commands/keys.ts');
const replay = () => import('./commands/replay.ts');
const rules = () => import('./commands/rules.ts');
const rulesCoverage = () => import('./commands/rules-coverage.ts');
const rulesTest = () => import('./commands/rules-test.ts');
const scenario = () => import('./commands/scenario.ts');
const serve = () => import('./commands/serve.ts');
const status = () => import('./commands/status.ts');

const EMBEDDED_HELP = 'in the embedded SQLite store (gatewatch serve --embedded)';
const DB_HELP = 'with --embedded: the store file (default: embedded.path)';

export function buildProgram(): Command {
  const program = new Command('gatewatch')
    .description('API-security analytics: gateway and WAF logs in, correlated incidents out.')
    .option('-c, --config <file>', 'configuration file (YAML or JSON); also GATEWATCH_CONFIG')
    .showHelpAfterError();

  // ingest: the distributed ingest processes
  const ingestCmd = program.command('ingest').description('Ingest processes: sources and workers.');
  ingestCmd
    .command('worker')
    .description('Consume raw batches: parse, normalise, enrich, index into Elasticsearch.')
    .option('--workers <n>', 'worker instances in this process', '1')
    .action(lazy(ingest, 'worker'));
  ingestCmd
    .command('sources')
    .description(
      'Run the configured sources: HTTP push endpoints, syslog listeners, file tailers, pull sources (S3, CloudWatch Logs, Kafka, Azure Blob).',
    )
    .option('--host <host>', 'listen address for HTTP and syslog')
    .action(lazy(ingest, 'sources'));
  const dead = ingestCmd.command('dead-letters').description('Inspect and replay dead letters.');
  dead
    .command('list')
    .description('The newest dead letters: records that did not become events, with the reason.')
    .option('--source <name>')
    .option('--size <n>', 'how many', '20')
    .option('--json', 'JSON output')
    .option('--embedded', 'from the embedded SQLite store a replay wrote')
    .option('--db <file>', DB_HELP)
    .action(lazy(ingest, 'deadLettersList'));
  dead
    .command('replay')
    .description('Re-enqueue pending dead letters (after fixing a source or format).')
    .option('--source <name>')
    .action(lazy(ingest, 'deadLettersReplay'));

  // detect: the distributed detection processes
  const detectCmd = program.command('detect').description('Detection processes.');
  detectCmd
    .command('worker')
    .description('Schedule every enabled rule and run them on Elasticsearch (many workers may run).')
    .action(lazy(detect, 'worker'));
  detectCmd
    .command('run')
    .description('Run rules once now (catching up from their checkpoints) and exit.')
    .argument('[ruleIds...]', 'rule ids (default: all enabled)')
    .action(lazy(detect, 'run'));

  program
    .command('replay')
    .description(
      'Replay log files through the whole pipeline (embedded, no servers) and print the incidents.',
    )
    .argument(
      '<paths...>',
      'log files or directories, or s3://bucket/prefix, cloudwatch://log-group, kafka://brokers/topic, azblob://container/prefix',
    )
    .option('--db <file>', 'embedded store file (default: embedded.path from the configuration)')
    .option('--fresh', 'start from an empty embedded store')
    .option('--rules <paths...>', 'rule files or directories (default: detections.rulePaths)')
    .option('--since <time>', 'only events at or after this ISO-8601 time')
    .option('--until <time>', 'only events before this ISO-8601 time')
    .option('--shift-to-now', 'shift timestamps so the newest event is now (keeps the gaps)')
    .option('--speed <n>', 'max (as fast as possible) or N× real time', 'max')
    .option('--json', 'print a JSON summary and the incidents')
    .option('--quiet', 'print only the incident count')
    .option('--progress', 'report progress on stderr even when it is not a terminal (a line every 2 s)')
    .option('--to <url>', 'send the files to a running deployment instead (HTTP ingest endpoint)')
    .option('--source <name>', 'source name events are attributed to', 'replay')
    .option('--token <token>', 'source token for --to (or GATEWATCH_INGEST_TOKEN)')
    .action(lazy(replay, 'replayCommand'));

  program
    .command('eval')
    .description(
      'Replay a labelled directory of logs and score the incidents: recall per attack class, precision, duplicates.',
    )
    .argument(
      '<dir>',
      'directory of logs with labels.jsonl (tool-neutral ground truth) or labels.json (generator)',
    )
    .option('--labels <file>', 'ground truth in JSON Lines (default <dir>/labels.jsonl)')
    .option('--rules <paths...>', 'rule files or directories', ['detections/rules'])
    .option('--json', 'JSON output')
    .action(lazy(evaluate, 'evaluate'));

  // rules: the rule language's CI tools
  const rulesCmd = program.command('rules').description('Detection rules: validate, format, test, coverage.');
  rulesCmd
    .command('validate')
    .description('Parse and check rule files; non-zero exit on errors (for CI).')
    .argument('[paths...]', 'rule files or directories', ['detections/rules'])
    .option('--json', 'machine-readable output')
    .action(lazy(rules, 'validate'));
  rulesCmd
    .command('fmt')
    .description(
      'Print rules in canonical form (--write to rewrite files, --check to fail when not canonical).',
    )
    .argument('<paths...>', 'rule files')
    .option('--write', 'rewrite the files in place')
    .option('--check', 'exit 1 when a file is not in canonical form')
    .action(lazy(rules, 'fmt'));
  rulesCmd
    .command('test')
    .description('Run rule test cases (tests/*.yaml next to rule files); non-zero exit on a failure.')
    .argument('[paths...]', 'rule directories, rule files or test files', ['detections/rules'])
    .option('--rules <paths...>', 'additional rule files or directories (user rules)')
    .option('--grep <text>', 'only cases whose rule id or name contains the text')
    .option('-v, --verbose', 'also list the incidents of passing cases')
    .option('--json', 'machine-readable output')
    .action(lazy(rulesTest, 'test'));
  rulesCmd
    .command('coverage')
    .description(
      'For each enabled rule: the fields it needs, the share of events carrying them per source, and whether it can fire on the stored events.',
    )
    .option('--embedded', "read an embedded store (a replay's database) instead of Elasticsearch")
    .option('--db <path>', 'embedded store file (default embedded.path)')
    .option('--since <duration>', 'only events of the last duration, e.g. 24h (Elasticsearch)')
    .option('--json', 'JSON output')
    .action(lazy(rulesCoverage, 'coverage'));

  const scenarioCmd = program.command('scenario').description('Generate labelled attack scenarios.');
  scenarioCmd
    .command('generate')
    .description('Write benign traffic with injected, labelled attacks for every built-in rule.')
    .requiredOption('--out <dir>', 'output directory')
    .option('--seed <n>', 'PRNG seed (same seed, same bytes)', '2024')
    .option('--hours <n>', 'hours of traffic', '2')
    .option('--rate <n>', 'benign requests per minute on average', '12')
    .option('--start <time>', 'ISO-8601 start time')
    .option('--attacks <ids...>', 'only these attacks (rule ids)')
    .option('--gzip', 'gzip the log files')
    .action(lazy(scenario, 'generateCommand'));

  program
    .command('serve')
    .description('Run the REST API (incidents, rules, events, ingest administration, health, metrics).')
    .option('--host <host>', 'listen address (api.host)')
    .option('--port <port>', 'listen port (api.port)')
    .option('--public-docs', 'serve /docs and /openapi.json without an API key')
    .option('--embedded', 'serve the embedded SQLite store (no Redis, no Elasticsearch)')
    .option('--db <file>', 'with --embedded: the store file (default: embedded.path from the configuration)')
    .option(
      '--console-key <role>',
      'create a key of this role (viewer, analyst, admin) and print a link that opens the console signed in with it',
    )
    .action(lazy(serve, 'serve'));

  // incidents: what analysts triage
  const incidentsCmd = program
    .command('incidents')
    .description(
      'Incidents: list, show, triage, comment (Elasticsearch, or --embedded for a replay’s file).',
    );
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  incidentsCmd
    .command('list')
    .description('List incidents, newest first; filters combine (values: comma-separated or repeated).')
    .option('--status <statuses>', 'new, triaged, in_remediation, resolved, false_positive', collect)
    .option('--severity <severities>', 'low, medium, high, critical', collect)
    .option('--rule <ids>', 'rule ids', collect)
    .option('--entity <values>', 'an IP, user, API key fingerprint, route, ASN or country', collect)
    .option('--tag <tags>', 'tags', collect)
    .option('--assignee <name>', 'assigned to')
    .option('--search <words>', 'words in the title (all of them)')
    .option('--from <time>', 'active at or after this ISO-8601 time')
    .option('--to <time>', 'active before this ISO-8601 time')
    .option('--sort <field>', 'created_at, last_seen, severity or risk', 'created_at')
    .option('--order <order>', 'asc or desc', 'desc')
    .option('--limit <n>', 'incidents per page (1-500)', '50')
    .option('--cursor <cursor>', 'the next page (printed after a full page)')
    .option('--json', 'machine-readable output: { items, next_cursor } as the REST API returns')
    .option('--embedded', EMBEDDED_HELP)
    .option('--db <file>', DB_HELP)
    .action(lazy(incidents, 'list'));
  incidentsCmd
    .command('show')
    .description('One incident: entities, figures, evidence, history, comments.')
    .argument('<id>', 'incident id, or a unique prefix of it')
    .option('--json', 'machine-readable output')
    .option('--embedded', EMBEDDED_HELP)
    .option('--db <file>', DB_HELP)
    .action(lazy(incidents, 'show'));
  incidentsCmd
    .command('triage')
    .description('Change status, assignee and/or severity (transitions are checked; history is kept).')
    .argument('<id>', 'incident id, or a unique prefix of it')
    .option('--status <status>', 'new, triaged, in_remediation, resolved or false_positive')
    .option('--assignee <name>', 'assign to')
    .option('--unassign', 'remove the assignee')
    .option('--severity <severity>', 'low, medium, high or critical')
    .option('--note <text>', 'why (kept in the history)')
    .option('--json', 'machine-readable output: the incident after the change')
    .option('--embedded', EMBEDDED_HELP)
    .option('--db <file>', DB_HELP)
    .action(lazy(incidents, 'triage'));
  incidentsCmd
    .command('comment')
    .description('Add a comment to an incident.')
    .argument('<id>', 'incident id, or a unique prefix of it')
    .argument('<text...>', 'the comment')
    .option('--json', 'machine-readable output: the comment')
    .option('--embedded', EMBEDDED_HELP)
    .option('--db <file>', DB_HELP)
    .action(lazy(incidents, 'comment'));

  // keys: REST API keys
  const keysCmd = program.command('keys').description('REST API keys: create, list, revoke.');
  keysCmd
    .command('create')
    .description('Create a key and print it once (it cannot be shown again).')
    .requiredOption('--role <role>', 'one of: viewer, analyst, admin, ingest')
    .option('--name <name>', 'what the key is for', 'cli')
    .option('--json', 'machine-readable output')
    .option('--embedded', EMBEDDED_HELP)
    .option('--db <file>', DB_HELP)
    .action(lazy(keys, 'create'));
  keysCmd
    .command('list')
    .description('List keys (never their secrets).')
    .option('--json', 'machine-readable output')
    .option('--embedded', EMBEDDED_HELP)
    .option('--db <file>', DB_HELP)
    .action(lazy(keys, 'list'));
  keysCmd
    .command('revoke')
    .description('Revoke a key by id (the part after gw_).')
    .argument('<id>', 'key id, 16 hex digits')
    .option('--embedded', EMBEDDED_HELP)
    .option('--db <file>', DB_HELP)
    .action(lazy(keys, 'revoke'));

  program
    .command('status')
    .description(
      'The deployment at a glance: Elasticsearch health and disk, Redis memory and persistence, queues and lag per source, dead letters, rules late or failing, retention — and what to do about each warning (exit 1 on a critical one).',
    )
    .option('--json', 'the report as JSON (what GET /api/v1/status answers)')
    .action(lazy(status, 'status'));

  return program;
}
