/**
 * The lesson notebooks, executed headless by `npm run lessons -- --smoke` (nbclient and the
 * tslab kernel): every code cell runs without error, every chart carries its static image and its
 * Vega-Lite or Plotly data, and the exported HTML report holds the images.
 *
 * Needs Debian's Jupyter and the tslab kernel registered for this checkout (./setup.sh does both):
 * without them the tests fail and say so.
 */
import assert from 'node:assert/strict';
import { runToEnd } from './support/processes';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  KERNEL_NAME, NOTEBOOKS_DIR, ROOT, assertPrerequisites, codeCells, lessonNotebooks, notebookProblems, plotOutputs,
  readNotebook, text,
} from '../scripts/jupyter';
import { UsageError, parseLessonArgs, runLesson, type LessonLog, type LessonResult } from '../scripts/lessons';
import type * as TS from 'typescript';

const RUNNER = path.join(ROOT, 'dist', 'scripts', 'lessons.js');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-lessons-'));
const notebooks = lessonNotebooks();

async function runRunner(args: string[]): Promise<{ code: number | null; output: string }> {
  const { code, out } = await runToEnd(process.execPath, [RUNNER, ...args], { cwd: ROOT });
  return { code, output: out };
}

/** What the runner said about failures, for assertion messages: its summary and the hooks' FAILED lines. */
const summary = (s: string) => {
  const lines = s.split('\n').filter((l) => /^lessons: |^\s+- |^ {4}|^\[[^\]]+\] (cell \d+ FAILED|  |the notebook as far)/.test(l));
  return (lines.length > 0 ? lines : s.trim().split('\n').slice(-40)).join('\n');
};

/** The part of the runner's output about one notebook. */
function ofNotebook(output: string, name: string): string {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`lessons: ${name} (`));
  if (start < 0) return output;
  const end = lines.findIndex((l, i) => i > start && /^lessons: \S+ \(setting/.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

describe('the lesson notebooks as committed', () => {
  it('exist, use the tslab kernel and carry no outputs', () => {
    assert.ok(notebooks.length > 0, 'no notebooks in notebooks/');
    for (const file of notebooks) {
      const nb = readNotebook(file);
      const name = path.basename(file);
      assert.equal((nb.metadata.kernelspec as { name?: string } | undefined)?.name, KERNEL_NAME, `${name}: kernel`);
      for (const { cell, index } of codeCells(nb)) {
        assert.equal((cell.outputs ?? []).length, 0, `${name}: cell ${index} was committed with outputs (clear them: reports/ keeps executed copies)`);
      }
    }
  });

  it('import the compiled lib: notebooks/lib leads to dist/lib, where every module a notebook imports is, with its declarations', () => {
    assert.ok(fs.lstatSync(path.join(NOTEBOOKS_DIR, 'lib')).isSymbolicLink(), 'notebooks/lib is not a symlink');
    assert.equal(fs.realpathSync(path.join(NOTEBOOKS_DIR, 'lib')), fs.realpathSync(path.join(ROOT, 'dist', 'lib')));
    const missing: string[] = [];
    for (const file of notebooks) {
      for (const spec of libImports(file)) {
        const target = path.join(ROOT, 'dist', spec.slice(2));
        if (!fs.existsSync(`${target}.js`) || !fs.existsSync(`${target}.d.ts`)) missing.push(`${path.basename(file)}: '${spec}'`);
      }
    }
    assert.deepEqual(missing, [], 'imports with no compiled module and declarations in dist/lib');
  });
});

/** The `./lib/...` modules a notebook's code cells import. */
function libImports(file: string): string[] {
  const source = codeCells(readNotebook(file)).map(({ cell }) => text(cell.source)).join('\n');
  return [...new Set([...source.matchAll(/\bfrom\s+'(\.\/lib\/[^']+)'|\brequire\('(\.\/lib\/[^']+)'\)/g)].map((m) => m[1] ?? m[2]))];
}

/** The TypeScript that tslab compiles notebook cells with. */
function tslabTypeScript(): typeof TS {
  const tslabDir = path.dirname(require.resolve('tslab/package.json'));
  return require(require.resolve('@tslab/typescript-for-tslab', { paths: [tslabDir] })) as typeof TS;
}

describe('dist/lib as tslab reads it', () => {
  it("type-checks the notebooks' imports against dist/lib's declarations with tslab's own TypeScript and options (the project compiles with a newer one)", { timeout: 120_000 }, () => {
    const ts = tslabTypeScript();
    // One file importing everything the notebooks import, checked as tslab checks a cell
    // (tslab/dist/converter.js), declarations included.
    const probe = path.join(NOTEBOOKS_DIR, '.tslab-imports-probe.ts');
    const specs = [...new Set(notebooks.flatMap(libImports))];
    const sources = new Map([[probe, specs.map((s, i) => `import * as m${i} from '${s}';\nexport { m${i} };`).join('\n')]]);
    const options: TS.CompilerOptions = {
      module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Node10, esModuleInterop: true,
      target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts'], skipLibCheck: false, resolveJsonModule: true,
      experimentalDecorators: true, noEmit: true, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')],
    };
    const host = ts.createCompilerHost(options);
    const read = host.readFile.bind(host);
    host.readFile = (f) => sources.get(f) ?? read(f);
    host.fileExists = ((exists) => (f: string) => sources.has(f) || exists(f))(host.fileExists.bind(host));
    const get = host.getSourceFile.bind(host);
    host.getSourceFile = (f, v) => (sources.has(f) ? ts.createSourceFile(f, sources.get(f) as string, v) : get(f, v));
    const program = ts.createProgram([probe], options, host);
    const ours = (f: TS.SourceFile | undefined) => !f || f.fileName === probe || fs.realpathSync(f.fileName).startsWith(path.join(ROOT, 'dist', 'lib'));
    const errors = ts.getPreEmitDiagnostics(program).filter((d) => ours(d.file)).map((d) => {
      const where = d.file && d.start !== undefined
        ? (({ line, character }) => `${path.relative(ROOT, d.file.fileName)}:${line + 1}:${character + 1}`)(d.file.getLineAndCharacterOfPosition(d.start))
        : '';
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, ' ').slice(0, 300)}`;
    });
    assert.ok(specs.length > 10, `${specs.length} imports`);
    const loaded = program.getSourceFiles().filter((f) => f.fileName.endsWith('.d.ts') && fs.realpathSync(f.fileName).startsWith(path.join(ROOT, 'dist', 'lib')));
    assert.ok(loaded.length >= specs.length, `${loaded.length} declaration files of dist/lib read`);
    assert.deepEqual(errors, [], `TypeScript ${ts.version} (tslab's) rejects dist/lib's declarations, so the notebooks that import them fail:\n  ${errors.join('\n  ')}`);
  });
});

describe('npm run lessons -- --smoke', () => {
  let run: { code: number | null; output: string } | null = null;

  before(async () => {
    assertPrerequisites();
    // Two at a time: the smoke experiments leave a core idle part of the time (8 notebooks: 275 s
    // against 310 s one at a time, on a 2-core VM).
    run = await runRunner(['--smoke', '--jobs', '2', '--out', out]);
  }, { timeout: 900_000 });

  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it('passes every notebook', () => {
    assert.ok(run, 'the runner did not run');
    assert.equal(run.code, 0, `npm run lessons -- --smoke failed:\n${summary(run.output)}`);
    assert.match(run.output, new RegExp(`${notebooks.length} passed, 0 failed`));
  });

  for (const file of notebooks) {
    const name = path.basename(file, '.ipynb');
    it(`${name}: every cell ran, every chart carries its image and its data, the HTML report holds the images`, () => {
      const executedFile = path.join(out, `${name}.ipynb`);
      assert.ok(fs.existsSync(executedFile), `${name} did not pass:\n${summary(ofNotebook(run?.output ?? '', name))}`);
      const nb = readNotebook(executedFile);
      assert.deepEqual(notebookProblems(nb), []);
      for (const { cell, index } of codeCells(nb)) assert.equal(typeof cell.execution_count, 'number', `cell ${index} has no execution count`);

      const plots = plotOutputs(nb);
      assert.ok(plots.length > 0, `${name} shows no chart`);
      for (const plot of plots) {
        assert.ok(plot.hasImage, `cell ${plot.index}: a chart without its static image (image/svg+xml, or text/html with data:image/svg+xml)`);
        assert.ok(plot.data !== null, `cell ${plot.index}: a chart image without its Vega-Lite or Plotly data`);
      }

      const html = fs.readFileSync(path.join(out, `${name}.html`), 'utf8');
      const images = [...html.matchAll(/data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)/g)];
      assert.ok(images.length >= plots.length, `the HTML report holds ${images.length} chart images for ${plots.length} charts`);
      for (const [, base64] of images) assert.match(Buffer.from(base64, 'base64').toString('utf8'), /<svg[\s\S]*<\/svg>\s*$/);
      if (plots.some((p) => p.data === 'plotly')) assert.ok(html.includes('window.Plotly'), 'the HTML report lacks plotly.js');
    });
  }

  it('has lessons 02 to 06 print their outcomes from the runs, over their seeds', () => {
    for (const name of ['02-momentum', '03-learning-rate-scaling', '04-warmup', '05-novograd', '06-devices-and-accuracy']) {
      const nb = readNotebook(path.join(out, `${name}.ipynb`));
      const printed = nb.cells.flatMap((c) => (c.outputs ?? []).map((o) => text(o.text as string | string[] | undefined))).join('\n');
      assert.match(printed, /mean and range over \d+ and \d+ seeds, (all 10,000|[\d,]+ of the 10,000) test images\): (.+ is better by \d\.\d{3}, and the ranges do not overlap|the ranges overlap)/, `${name} prints no comparison`);
    }
  });

  it('has notebook 00 show that 2 workers x 32 train like 1 worker x 64', () => {
    const nb = readNotebook(path.join(out, '00-data-parallel-in-one-picture.ipynb'));
    const plain = nb.cells.flatMap((c) => (c.outputs ?? []).map((o) => text(o.data?.['text/plain'] as string | string[] | undefined))).join('\n');
    // The table's plain-text twin: "A vs B: 1 x 64 vs 2 x 32 | <max relative difference> | ...".
    const same = /^A vs B: [^|\n]*\| (\S+) \|/m.exec(plain);
    const other = /^A vs C: [^|\n]*\| (\S+) \|/m.exec(plain);
    assert.ok(same && other, `the comparison table is missing:\n${plain}`);
    assert.ok(Number(same[1]) < 1e-5, `A vs B: ${same[1]}`);
    assert.ok(Number(other[1]) > 100 * Number(same[1]), `A vs C: ${other[1]}, A vs B: ${same[1]}`);
  });
});

/** Writes a notebook of code cells for this checkout's tslab kernel. */
function writeCodeNotebook(file: string, sources: string[]): void {
  const cells = sources.map((source) => ({ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source }));
  fs.writeFileSync(file, JSON.stringify({
    cells, metadata: { kernelspec: { name: KERNEL_NAME, display_name: 'TypeScript', language: 'typescript' } }, nbformat: 4, nbformat_minor: 5,
  }));
}

/**
 * The small notebooks below, each mostly a kernel's start-up: written and started together the
 * first time a test awaits one (after the smoke run), so that their start-ups share the cores.
 */
const settingsCells: { name: string; source: string; message: RegExp }[] = [
  { name: 'unknown-optimizer', source: "lessonConfig({ model: 'cnn', optimizer: 'adam' as any });",
    message: /UsageError: optimizer \(--optimizer\) must be one of sgd, novograd, lamb, lars \(got 'adam'\)/ },
  { name: 'too-many-devices', source: "await runExperiment('too many', { model: 'cnn', numGpus: 64, trainSubset: 256, epochs: 1 });",
    message: /LaunchError: numGpus \(--num-gpus\) 64 asks for more devices than this machine has \(\d+ CPU cores\): lower numGpus \(--num-gpus\), or add oversubscribe \(--oversubscribe\)/ },
];
const QUIET: LessonLog = { out: () => {}, err: () => {} };
interface SmallRun { dir: string; file: string; outDir: string; result: LessonResult }
let smallRuns: Map<string, Promise<SmallRun>> | null = null;
const smallDirs: string[] = [];
after(() => { for (const dir of smallDirs) fs.rmSync(dir, { recursive: true, force: true }); });

function smallRun(name: string): Promise<SmallRun> {
  if (smallRuns == null) {
    assertPrerequisites();
    const start = (name: string, sources: string[], parent: string, linkLib: boolean): [string, Promise<SmallRun>] => {
      const dir = fs.mkdtempSync(path.join(parent, linkLib ? '.settings-test-' : 'fmnist-small-'));
      smallDirs.push(dir);
      if (linkLib) fs.symlinkSync(path.join(ROOT, 'dist', 'lib'), path.join(dir, 'lib'));
      const file = path.join(dir, `${name}.ipynb`);
      writeCodeNotebook(file, sources);
      const outDir = path.join(dir, 'out');
      fs.mkdirSync(outDir);
      const run = runLesson(file, { setting: 'smoke', only: [], outDir }, QUIET).then((result) => ({ dir, file, outDir, result }));
      run.catch(() => {}); // reported by the test that awaits it
      return [name, run];
    };
    smallRuns = new Map([
      // Inside the project, where the notebook's imports find node_modules.
      ...settingsCells.map(({ name, source }) => start(name, ["import { lessonConfig, runExperiment } from './lib/lessons/experiment';", source], NOTEBOOKS_DIR, true)),
      start('burst', ['for (let i = 0; i < 10000; i++) console.log(`line ${i}`);', "console.log('next cell');"], os.tmpdir(), false),
      start('failing', ["console.log('before');", "throw new Error('lesson-' + 'failure-probe');", "console.log('after');"], os.tmpdir(), false),
    ]);
  }
  return smallRuns.get(name) as Promise<SmallRun>;
}

describe('a bad setting in a lesson', () => {
  for (const { name, message } of settingsCells) {
    it(`prints its error in the cell (${name}), and nothing trains`, async () => {
      const { dir, result } = await smallRun(name);
      assert.equal(result.ok, false);
      const partial = readNotebook(result.executed);
      const shown = (partial.cells[1].outputs ?? []).map((o) => text(o.text ?? (o.data?.['text/plain'] as string | string[] | undefined))).join('\n');
      assert.match(shown, message);
      assert.ok(!fs.existsSync(path.join(dir, 'runs')), 'a run was started');
    });
  }
});

describe('the kernel', () => {
  it('delivers every line of a cell that prints 10,000 (tslab alone lost all after about 500, its publisher dropped past 1,000)', async () => {
    const { result } = await smallRun('burst');
    assert.equal(result.ok, true, result.problems.join('\n'));
    const done = readNotebook(result.executed);
    const lines = text((done.cells[0].outputs ?? []).map((o) => text(o.text)).join('')).trim().split('\n');
    assert.equal(lines.length, 10000);
    assert.equal(lines[9999], 'line 9999');
    assert.match(text(done.cells[1].outputs?.[0]?.text), /next cell/);
  });
});

describe('the lessons runner', () => {
  it('takes --jobs N (whole, 1 or more) and names the flag when it is wrong', () => {
    assert.equal(parseLessonArgs(['--smoke', '--jobs', '3'], {}).jobs, 3);
    assert.equal(parseLessonArgs(['--jobs=2'], {}).jobs, 2);
    assert.equal(parseLessonArgs([], {}).jobs, 1);
    for (const bad of ['0', '1.5', 'two', '-1']) {
      assert.throws(() => parseLessonArgs(['--jobs', bad], {}), (e: Error) => e instanceof UsageError && e.message.includes(`--jobs must be a whole number of notebooks, 1 or more (got '${bad}')`));
    }
  });

  it('names the notebook and the cell that failed, and does not run the cells after it', async () => {
    const { file, outDir, result } = await smallRun('failing');
    assert.equal(result.ok, false);
    const problems = result.problems.join('\n');
    assert.match(problems, /executing the notebook failed/);
    assert.match(problems, /cell 1 .*lesson-failure-probe/s);
    assert.equal(result.executed, path.join(outDir, 'failing.failed.ipynb'));
    const partial = readNotebook(result.executed);
    assert.match(text(partial.cells[0].outputs?.[0]?.text), /before/);
    assert.equal((partial.cells[2].outputs ?? []).length, 0, 'a cell after the failure ran');
    assert.ok(!fs.existsSync(path.join(outDir, 'failing.html')), 'a failed notebook got a report');
    assert.ok(fs.existsSync(file), 'the notebook itself is untouched');
  });
});
