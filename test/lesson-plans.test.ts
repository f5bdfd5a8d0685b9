/**
 * Every lesson's quick plan, read from the notebook itself: its settings cell is compiled and run
 * (against the compiled lib) in the quick setting, and the `plan` it defines is checked. The
 * lessons that compare accuracies repeat each compared configuration over at least 3 seeds and
 * take their final numbers from the whole test set; the lessons that compare times repeat their
 * measurements at least 3 times.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');
const NOTEBOOKS = path.join(ROOT, 'notebooks');

/** What a cell's `./lib/...` imports resolve to: the compiled library this test runs against. */
function notebookRequire(id: string): unknown {
  if (id.startsWith('./lib/')) return require(path.join(ROOT, 'dist', id.slice(2)));
  return require(id);
}

/** Runs a notebook's first code cell in `setting` and returns the globals it defines that are named in `names`. */
function settingsOf(notebook: string, setting: string, names: string[]): Record<string, unknown> {
  const nb = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, notebook), 'utf8')) as { cells: { cell_type: string; source: string[] }[] };
  const cell = nb.cells.find((c) => c.cell_type === 'code');
  assert.ok(cell, `${notebook} has no code cell`);
  const js = ts.transpileModule(cell.source.join(''), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
  const exported = names.map((n) => `${n}: typeof ${n} === 'undefined' ? undefined : ${n}`).join(', ');
  const previous = process.env.FASHION_MNIST_LESSON_SETTING;
  const log = console.log;
  process.env.FASHION_MNIST_LESSON_SETTING = setting;
  console.log = () => undefined;
  try {
    const run = new Function('require', 'module', 'exports', `${js}\nreturn { ${exported} };`) as (r: unknown, m: unknown, e: unknown) => Record<string, unknown>;
    return run(notebookRequire, { exports: {} }, {});
  } finally {
    console.log = log;
    if (previous == null) delete process.env.FASHION_MNIST_LESSON_SETTING;
    else process.env.FASHION_MNIST_LESSON_SETTING = previous;
  }
}

interface Compared {
  label: string;
  settings: { valSubset?: number | null };
  seeds: number[];
}

/** Every repeated configuration (label, settings, seeds) anywhere in a plan. */
function comparedRuns(value: unknown, found: Compared[] = []): Compared[] {
  if (Array.isArray(value)) value.forEach((v) => comparedRuns(v, found));
  else if (value != null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.label === 'string' && Array.isArray(o.seeds) && o.settings != null) found.push(o as unknown as Compared);
    else Object.values(o).forEach((v) => comparedRuns(v, found));
  }
  return found;
}

const ACCURACY_LESSONS = ['02-momentum.ipynb', '03-learning-rate-scaling.ipynb', '04-warmup.ipynb', '05-novograd.ipynb', '06-devices-and-accuracy.ipynb'];

describe("the lessons' quick plans", () => {
  for (const notebook of ACCURACY_LESSONS) {
    it(`${notebook}: every compared configuration runs at least 3 seeds, its final numbers on the whole test set`, () => {
      const { plan } = settingsOf(notebook, 'quick', ['plan']);
      assert.ok(plan != null, `${notebook}'s settings cell defines no plan`);
      const runs = comparedRuns(plan);
      assert.ok(runs.length >= 2, `${notebook}: the plan compares ${runs.length} configuration(s)`);
      for (const run of runs) {
        // A tuning sweep may run one seed per point; the configurations it picks are then rerun on fresh seeds.
        const tuning = (run as Compared & { tuning?: boolean }).tuning === true;
        if (tuning) continue;
        assert.ok(new Set(run.seeds).size >= 3, `${notebook}: '${run.label}' runs seeds [${run.seeds.join(', ')}]`);
        assert.equal(run.settings.valSubset ?? null, null, `${notebook}: '${run.label}' validates on ${run.settings.valSubset} images, not the whole test set`);
      }
      const sweeps = runs.filter((r) => (r as Compared & { tuning?: boolean }).tuning === true);
      if (sweeps.length > 0) {
        const confirm = (plan as { confirmSeeds?: number[] }).confirmSeeds;
        // The reruns of the sweep's picks take the sweep's settings but the whole test set.
        const { s } = settingsOf(notebook, 'quick', ['s']);
        assert.equal((s as { valSubset?: number | null }).valSubset ?? null, null, `${notebook}: its reruns validate on part of the test set`);
        assert.ok(Array.isArray(confirm) && new Set(confirm).size >= 3, `${notebook}: the picks of its sweep are confirmed on seeds [${confirm}]`);
        const swept = new Set(sweeps.flatMap((s) => s.seeds));
        assert.ok(confirm.every((s) => !swept.has(s)), `${notebook}: the confirming seeds [${confirm}] must be fresh (the sweep ran [${[...swept]}])`);
      }
    });
  }

  it('01-throughput.ipynb and 07-hiding-communication.ipynb repeat every timing at least 3 times', () => {
    const { settings } = settingsOf('01-throughput.ipynb', 'quick', ['settings']);
    assert.ok(((settings as { repeats: number }).repeats) >= 3, '01: repeats of the all-reduce timing');
    const { S } = settingsOf('07-hiding-communication.ipynb', 'quick', ['S']);
    assert.ok(((S as { repeats: number }).repeats) >= 3, '07: runs per configuration');
  });
});
