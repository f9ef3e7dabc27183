/**
 * `gatewatch rules validate` and `gatewatch rules fmt`, as functions that return the exit
 * code (the commander wiring lives in cli/). Output goes to the given streams only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { formatDiagnostic } from './diagnostics.ts';
import { formatRules, loadRuleFiles } from './index.ts';

export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/**
 * Validate rule files / directories. Exit 0 when there are no errors (warnings allowed),
 * 1 when there are errors, 2 when no file was given.
 * `--json` prints `{ ok, files, rules: [{id, kind, version, file, line}], diagnostics, errors, warnings }`.
 */
export async function rulesValidate(files: string[], opts: { json: boolean }, io: Io): Promise<number> {
  if (files.length === 0) {
    io.stderr.write('gatewatch rules validate: give at least one file or directory\n');
    return 2;
  }
  const r = await loadRuleFiles(files);
  const errors = r.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = r.diagnostics.length - errors;
  if (opts.json) {
    const out = {
      ok: errors === 0,
      files: r.files,
      rules: r.rules.map((x) => ({
        id: x.id,
        kind: x.kind,
        version: x.version,
        file: x.source.file,
        line: x.source.line,
      })),
      diagnostics: r.diagnostics,
      errors,
      warnings,
    };
    io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    for (const d of r.diagnostics) io.stderr.write(`${formatDiagnostic(d)}\n\n`);
    const summary = `${r.files.length} file(s), ${r.rules.length} rule(s) valid, ${errors} error(s), ${warnings} warning(s)`;
    (errors > 0 ? io.stderr : io.stdout).write(`${summary}\n`);
  }
  return errors > 0 ? 1 : 0;
}

/**
 * Print the canonical form of each file to stdout (`--write`: rewrite the files in place;
 * `--check`: print nothing, exit 1 when a file is not in canonical form). Files with syntax
 * errors are reported and left alone (exit 1).
 */
export async function rulesFmt(
  files: string[],
  opts: { write?: boolean; check?: boolean },
  io: Io,
): Promise<number> {
  if (files.length === 0) {
    io.stderr.write('gatewatch rules fmt: give at least one file\n');
    return 2;
  }
  let code = 0;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      io.stderr.write(`${file}: ${e instanceof Error ? e.message : String(e)}\n`);
      code = 1;
      continue;
    }
    const r = formatRules(text, { file });
    if (r.text === undefined) {
      for (const d of r.diagnostics) io.stderr.write(`${formatDiagnostic(d)}\n\n`);
      code = 1;
      continue;
    }
    if (opts.check) {
      if (r.text !== text) {
        io.stderr.write(`${file}: not in canonical form (run \`gatewatch rules fmt --write ${file}\`)\n`);
        code = 1;
      }
    } else if (opts.write) {
      if (r.text !== text) writeFileSync(file, r.text);
    } else {
      if (files.length > 1) io.stdout.write(`# ==> ${file} <==\n`);
      io.stdout.write(r.text);
    }
  }
  return code;
}
