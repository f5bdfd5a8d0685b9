/**
 * `npm run lessons [-- --smoke | --quick | --full] [--only NAME] [--out DIR] [--jobs N]`
 *
 * Executes every lesson notebook (notebooks/*.ipynb) headless in the tslab kernel
 * (scripts/run_notebook.py: nbclient, then nbconvert's HTML exporter), in the setting the notebooks read from
 * FASHION_MNIST_LESSON_SETTING (quick by default), and writes for each
 * - reports/<name>.ipynb: the executed notebook, signed as trusted;
 * - reports/<name>.html: a self-contained report (charts are images inside the page; the Plotly
 *   charts carry plotly.js), readable offline.
 *
 * A notebook fails when its execution fails, or when the executed notebook has a code cell that was not
 * executed or that reported an error (tslab writes errors to stderr only); the failing notebook and
 * cell are named, and the notebook as far as it ran is kept as reports/<name>.failed.ipynb.
 * Exit code: 0 when every notebook passed, 1 otherwise, 2 for bad arguments or a missing set-up.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  KERNEL_NAME, LESSON_SETTINGS, type LessonSetting, PYTHON, REPORTS_DIR, ROOT, SETTING_ENV,
  assertPrerequisites, jupyterEnv, lessonNotebooks, notebookProblems, readNotebook,
} from './jupyter';

/** Executes, signs and exports one notebook in one Python process. */
const RUN_NOTEBOOK = path.join(ROOT, 'scripts', 'run_notebook.py');

/** Seconds one cell may run before nbclient gives up. */
const CELL_TIMEOUT: Record<LessonSetting, number> = { smoke: 600, quick: 1200, full: 7200 };

export interface LessonOptions {
  setting: LessonSetting;
  /** Notebook names (with or without .ipynb, or a prefix such as 00); all when empty. */
  only: string[];
  outDir: string;
  /** Notebooks executed at once (default 1). */
  jobs?: number;
}

/** Where a notebook's log lines go: straight through, or held until it ends (with --jobs). */
export interface LessonLog {
  out(text: string): void;
  err(text: string): void;
}

const DIRECT: LessonLog = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** A log held back and written whole, so that notebooks run side by side do not interleave. */
class HeldLog implements LessonLog {
  private readonly lines: [boolean, string][] = [];
  out(text: string): void { this.lines.push([false, text]); }
  err(text: string): void { this.lines.push([true, text]); }
  flush(): void {
    for (const [isErr, text] of this.lines) (isErr ? DIRECT.err : DIRECT.out)(text);
    this.lines.length = 0;
  }
}

export interface LessonResult {
  name: string;
  ok: boolean;
  seconds: number;
  executed: string;
  html: string | null;
  problems: string[];
}

const USAGE = `usage: npm run lessons -- [--smoke | --quick | --full | --setting S] [--only NAME]... [--out DIR] [--jobs N]
  --smoke, --quick, --full   the size of the experiments (default: quick, or $${SETTING_ENV})
  --only NAME                run only this notebook (file name, with or without .ipynb, or its number, e.g. 00)
  --out DIR                  where the executed notebooks and HTML reports go (default: reports/)
  --jobs N                   execute N notebooks at once (default 1; each notebook's log is printed when it ends).
                             Their experiments then share the machine's cores: the times and throughputs the
                             lessons measure are no longer their own, so keep 1 for the reports you read`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseLessonArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): LessonOptions {
  const fromEnv = env[SETTING_ENV];
  let setting: string = fromEnv && fromEnv !== '' ? fromEnv : 'quick';
  const only: string[] = [];
  let outDir = REPORTS_DIR;
  let jobs = 1;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const eq = arg.indexOf('=');
      if (eq >= 0) return arg.slice(eq + 1);
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${arg} needs a value`);
      return next;
    };
    if (arg === '--smoke' || arg === '--quick' || arg === '--full') setting = arg.slice(2);
    else if (arg === '--setting' || arg.startsWith('--setting=')) setting = value();
    else if (arg === '--only' || arg.startsWith('--only=')) only.push(value());
    else if (arg === '--out' || arg.startsWith('--out=')) outDir = path.resolve(value());
    else if (arg === '--jobs' || arg.startsWith('--jobs=')) {
      const given = value();
      jobs = Number(given);
      if (!/^\d+$/.test(given) || jobs < 1) throw new UsageError(`--jobs must be a whole number of notebooks, 1 or more (got '${given}')`);
    }
    else if (arg === '--help' || arg === '-h') throw new UsageError(USAGE);
    else throw new UsageError(`unknown argument '${arg}'\n${USAGE}`);
  }
  if (!(LESSON_SETTINGS as readonly string[]).includes(setting)) {
    throw new UsageError(`the setting must be one of ${LESSON_SETTINGS.join(', ')} (got '${setting}')`);
  }
  return { setting: setting as LessonSetting, only, outDir, jobs };
}

/** The notebooks to run: all, or those `only` names. */
export function selectNotebooks(only: string[]): string[] {
  const all = lessonNotebooks();
  if (only.length === 0) return all;
  return only.map((name) => {
    const base = path.basename(name).replace(/\.ipynb$/, '');
    const exact = all.find((f) => path.basename(f, '.ipynb') === base);
    if (exact) return exact;
    const prefixed = all.filter((f) => path.basename(f).startsWith(base));
    if (prefixed.length === 1) return prefixed[0];
    const names = all.map((f) => path.basename(f, '.ipynb')).join(', ');
    throw new UsageError(prefixed.length === 0 ? `no notebook '${name}' in notebooks/ (there are: ${names})` : `'${name}' names several notebooks: ${prefixed.map((f) => path.basename(f)).join(', ')}`);
  });
}

/**
 * Runs a command; resolves with its exit code. Its stdout goes to `log`. Of its stderr, lines that
 * start with `[label]` go to `log` at once; the rest (a Python traceback, or the kernel's own
 * messages) is shown only when the command fails without a `[label] cell N FAILED` line, its only
 * explanation then.
 */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, label: string, log: LessonLog): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => log.out(chunk));
    const held: string[] = [];
    let explained = false;
    let pending = '';
    const onLine = (line: string) => {
      if (line.startsWith(`[${label}]`)) {
        log.err(`${line}\n`);
        if (/^\[[^\]]+\] cell \d+ FAILED/.test(line)) explained = true;
      } else {
        held.push(line);
        if (held.length > 200) held.shift();
      }
    };
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(onLine);
    });
    child.on('error', (e) => {
      log.err(`lessons: could not start ${command}: ${e.message}\n`);
      resolve(127);
    });
    child.on('close', (code, signal) => {
      if (pending) onLine(pending);
      const status = code ?? (signal ? 128 : 1);
      if (status !== 0 && !explained && held.length > 0) log.err(`${held.slice(-60).join('\n')}\n`);
      resolve(status);
    });
  });
}

/** Executes one notebook, checks it, signs it and exports its HTML report. */
export async function runLesson(file: string, options: LessonOptions, log: LessonLog = DIRECT): Promise<LessonResult> {
  const name = path.basename(file, '.ipynb');
  const executed = path.join(options.outDir, `${name}.ipynb`);
  const partial = path.join(options.outDir, `${name}.failed.ipynb`);
  const html = path.join(options.outDir, `${name}.html`);
  if (path.resolve(options.outDir) === path.dirname(path.resolve(file))) {
    throw new UsageError(`the output folder ${options.outDir} is the notebook's own folder: its executed copy would replace ${file}`);
  }
  for (const f of [executed, partial, html]) fs.rmSync(f, { force: true });
  const env = jupyterEnv({ [SETTING_ENV]: options.setting });
  const started = Date.now();
  const seconds = () => (Date.now() - started) / 1000;
  log.out(`lessons: ${name} (setting ${options.setting}) ...\n`);

  const code = await run(PYTHON, [
    RUN_NOTEBOOK, file, '--kernel', KERNEL_NAME, '--timeout', String(CELL_TIMEOUT[options.setting]),
    '--executed', executed, '--partial', partial, '--html', html, '--label', name,
  ], env, name, log);
  if (code !== 0 || !fs.existsSync(executed)) {
    const where = fs.existsSync(partial) ? readNotebook(partial) : null;
    const problems = where ? notebookProblems(where) : [];
    return {
      name, ok: false, seconds: seconds(), executed: fs.existsSync(partial) ? partial : executed, html: null,
      problems: [`executing the notebook failed (scripts/run_notebook.py, exit code ${code})`, ...problems],
    };
  }
  const problems = notebookProblems(readNotebook(executed));
  if (problems.length > 0) {
    fs.rmSync(html, { force: true });
    return { name, ok: false, seconds: seconds(), executed, html: null, problems };
  }
  if (!fs.existsSync(html)) return { name, ok: false, seconds: seconds(), executed, html: null, problems: ['the HTML report was not written'] };
  return { name, ok: true, seconds: seconds(), executed, html, problems: [] };
}

export async function main(argv: string[]): Promise<number> {
  let options: LessonOptions;
  let files: string[];
  try {
    options = parseLessonArgs(argv);
    files = selectNotebooks(options.only);
    assertPrerequisites();
  } catch (e) {
    console.error(`lessons: ${(e as Error).message}`);
    return 2;
  }
  if (files.length === 0) {
    console.error('lessons: no notebooks in notebooks/');
    return 2;
  }
  fs.mkdirSync(options.outDir, { recursive: true });
  const results: (LessonResult | undefined)[] = files.map(() => undefined);
  const rel = (f: string) => path.relative(process.cwd(), f) || f;
  let next = 0;
  let usageError: string | null = null;
  const worker = async () => {
    while (next < files.length && usageError === null) {
      const index = next++;
      const log = (options.jobs ?? 1) > 1 ? new HeldLog() : DIRECT;
      try {
        const result = await runLesson(files[index], options, log);
        results[index] = result;
        if (result.ok) {
          log.out(`lessons: ${result.name}: ok in ${result.seconds.toFixed(1)} s -> ${rel(result.executed)}, ${rel(result.html as string)}\n`);
        } else {
          log.err(`lessons: ${result.name}: FAILED after ${result.seconds.toFixed(1)} s (see ${rel(result.executed)})\n`);
          for (const p of result.problems) log.err(`  - ${p}\n`);
        }
      } catch (e) {
        usageError = (e as Error).message;
      }
      if (log instanceof HeldLog) log.flush();
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.jobs ?? 1, files.length) }, worker));
  if (usageError !== null) {
    console.error(`lessons: ${usageError}`);
    return 2;
  }
  const done = results.filter((r): r is LessonResult => r !== undefined);
  const failed = done.filter((r) => !r.ok);
  console.log(`lessons: ${done.length - failed.length} passed, ${failed.length} failed (setting ${options.setting})`);
  return failed.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
