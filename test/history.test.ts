import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXPERIMENT_FILE, experimentRows, runExperiment, type Experiment } from '../lib/lessons/experiment';
import { EARLIER, THIS_RUN, earlierRuns, overlayChart, overlayRows, whenLabel, type EarlierExperiment } from '../lib/lessons/history';
import { compileVegaLite, lineChart, lineFigure, renderSvg } from '../lib/plot';
import type { TrainConfig } from '../lib/train/config';
import { listCheckpoints } from '../lib/train/checkpoint-file';
import { readRun } from '../lib/train/run-record';

const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-history-'));
after(() => fs.rmSync(runsDir, { recursive: true, force: true }));

const tiny: Partial<TrainConfig> = {
  model: 'cnn', trainSubset: 256, valSubset: 100, epochs: 1, batchSize: 32, targetAccuracy: 1, progress: false, runsDir,
};

/** A copy of a real run folder under another name, changed by `edit`. */
function copyRun(from: Experiment, name: string, edit: (dir: string) => void = () => undefined): string {
  const dir = path.join(runsDir, name);
  fs.cpSync(from.runDir, dir, { recursive: true });
  edit(dir);
  return dir;
}

function setStartedAt(dir: string, startedAt: string): void {
  const file = path.join(dir, 'run.json');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), startedAt }));
}

function setTag(dir: string, tag: { label: string; lesson: string | null; setting?: string | null }): void {
  fs.writeFileSync(path.join(dir, EXPERIMENT_FILE), JSON.stringify(tag));
}

const dirs = (experiments: Experiment[]) => experiments.map((e) => path.basename(e.runDir));

describe('earlier runs of a lesson', () => {
  let first: Experiment;
  let second: Experiment;
  before(async () => {
    first = await runExperiment('baseline', { ...tiny, baseLr: 0.01 }, { lesson: 'lesson-x' });
    second = await runExperiment('baseline', { ...tiny, baseLr: 0.05 });
  });

  it('runExperiment tags its run folder with the label, the lesson and the lesson setting', () => {
    const tag = (e: Experiment) => JSON.parse(fs.readFileSync(path.join(e.runDir, EXPERIMENT_FILE), 'utf8')) as unknown;
    assert.deepEqual(tag(first), { label: 'baseline', lesson: 'lesson-x', setting: 'quick' });
    assert.deepEqual(tag(second), { label: 'baseline', lesson: null, setting: 'quick' });
  });

  it("keeps to the current lesson setting: CI's smoke runs and untagged records stay out of a quick run's chart", () => {
    const smoke = copyRun(first, 'a-smoke-run', (dir) => setTag(dir, { label: 'baseline', lesson: 'lesson-x', setting: 'smoke' }));
    const untagged = copyRun(first, 'an-untagged-run', (dir) => setTag(dir, { label: 'baseline', lesson: 'lesson-x' }));
    try {
      assert.deepEqual(dirs(earlierRuns({ runsDir, lesson: 'lesson-x' })), dirs([first]));
      assert.deepEqual(dirs(earlierRuns({ runsDir, lesson: 'lesson-x', setting: 'smoke' })), ['a-smoke-run']);
      assert.deepEqual(new Set(dirs(earlierRuns({ runsDir, lesson: 'lesson-x', setting: 'any' }))), new Set([...dirs([first]), 'a-smoke-run', 'an-untagged-run']));
      assert.equal(earlierRuns({ runsDir, lesson: 'lesson-x', setting: 'smoke' })[0].setting, 'smoke');
    } finally {
      for (const dir of [smoke, untagged]) fs.rmSync(dir, { recursive: true });
    }
  });

  it('finds the first run when the second is excluded, read back as it was returned', () => {
    const found = earlierRuns({ runsDir, exclude: [second] });
    assert.equal(found.length, 1);
    const [earlier] = found;
    assert.equal(earlier.runDir, first.runDir);
    assert.equal(earlier.label, 'baseline');
    assert.equal(earlier.lesson, 'lesson-x');
    assert.deepEqual(earlier.config, first.config);
    assert.deepEqual(earlier.epochs, first.epochs);
    assert.equal(earlier.outcome, first.outcome);
    assert.deepEqual(earlier.diverged, first.diverged);
    assert.ok(Date.parse(earlier.startedAt) > Date.now() - 10 * 60_000, earlier.startedAt);
  });

  it('lists both newest first, and filters by lesson and label', () => {
    assert.deepEqual(dirs(earlierRuns({ runsDir })), dirs([second, first]));
    assert.deepEqual(dirs(earlierRuns({ runsDir, lesson: 'lesson-x' })), dirs([first]));
    assert.deepEqual(earlierRuns({ runsDir, lesson: 'lesson-y' }), []);
    assert.deepEqual(dirs(earlierRuns({ runsDir, label: 'baseline', exclude: [first] })), dirs([second]));
    assert.deepEqual(earlierRuns({ runsDir, label: 'other' }), []);
    assert.deepEqual(earlierRuns({ runsDir: path.join(runsDir, 'missing') }), []);
  });

  it('skips unreadable and partial folders, and files', () => {
    copyRun(first, 'bad-run-json', (dir) => fs.writeFileSync(path.join(dir, 'run.json'), '{"id": "bad-run-js'));
    copyRun(first, 'bad-experiment-json', (dir) => fs.writeFileSync(path.join(dir, EXPERIMENT_FILE), 'not json'));
    copyRun(first, 'no-experiment-json', (dir) => fs.rmSync(path.join(dir, EXPERIMENT_FILE)));
    copyRun(first, 'no-epochs', (dir) => fs.writeFileSync(path.join(dir, 'metrics.jsonl'), ''));
    copyRun(first, 'truncated-metrics', (dir) => fs.appendFileSync(path.join(dir, 'metrics.jsonl'), '{"epoch": 2, "valAcc'));
    copyRun(first, 'no-label', (dir) => fs.writeFileSync(path.join(dir, EXPERIMENT_FILE), '{"lesson": "lesson-x"}'));
    fs.writeFileSync(path.join(runsDir, 'notes.txt'), 'not a run');
    try {
      assert.deepEqual(dirs(earlierRuns({ runsDir })), dirs([second, first]));
    } finally {
      for (const name of ['bad-run-json', 'bad-experiment-json', 'no-experiment-json', 'no-epochs', 'truncated-metrics', 'no-label', 'notes.txt']) {
        fs.rmSync(path.join(runsDir, name), { recursive: true });
      }
    }
  });

  it('orders by start time, not by folder name, and keeps at most `limit` (10 by default)', () => {
    const old = Array.from({ length: 12 }, (_, i) => {
      // Folder names in the opposite order of the start times.
      const dir = copyRun(first, `z-old-${String(99 - i)}`, (d) => setStartedAt(d, new Date(Date.UTC(2020, 0, 1 + i)).toISOString()));
      return path.basename(dir);
    });
    try {
      const newestOld = [...old].reverse();
      assert.deepEqual(dirs(earlierRuns({ runsDir })), [...dirs([second, first]), ...newestOld.slice(0, 8)]);
      assert.deepEqual(dirs(earlierRuns({ runsDir, limit: 3 })), [...dirs([second, first]), newestOld[0]]);
      assert.deepEqual(dirs(earlierRuns({ runsDir, limit: 30, exclude: [first, second] })), newestOld);
      assert.deepEqual(earlierRuns({ runsDir, limit: 0 }), []);
    } finally {
      for (const name of old) fs.rmSync(path.join(runsDir, name), { recursive: true });
    }
  });

  it('overlayRows marks this run and the earlier ones, each earlier run with a name of its own', () => {
    const earlier = earlierRuns({ runsDir, exclude: [second] });
    const twin: EarlierExperiment = { ...earlier[0], runDir: path.join(runsDir, 'twin') };
    const rows = overlayRows([second], [...earlier, twin]);
    assert.equal(rows.length, 3 * first.epochs.length);
    const current = rows.filter((r) => r.when === THIS_RUN);
    assert.deepEqual(current, experimentRows([second]).map((r) => ({ ...r, when: THIS_RUN })));
    const older = rows.filter((r) => r.when === EARLIER);
    assert.equal(older.length, 2 * first.epochs.length);
    const name = `baseline (${whenLabel(earlier[0].startedAt)})`;
    assert.match(name, /^baseline \(\d\d:\d\d, \d{1,2} [A-Z][a-z]{2}\)$/);
    assert.deepEqual(older.map((r) => r.run), [name, `${name} #2`]);
    assert.deepEqual(older.map((r) => r.accuracy), [first.epochs[0].valAccuracy, first.epochs[0].valAccuracy]);
  });

  it('overlayChart draws earlier runs dashed and faded, coloured by run, and compiles cleanly', async () => {
    const earlier = earlierRuns({ runsDir, exclude: [second] });
    const spec = overlayChart({ title: 'Edits compared', current: [second], earlier, y: 'loss', x: 'seconds' });
    const values = (spec.data as { values: Record<string, unknown>[] }).values;
    assert.deepEqual(values, overlayRows([second], earlier));
    const encoding = spec.encoding as Record<string, { field?: string; scale?: { domain: unknown[]; range: unknown[] } }>;
    assert.equal(encoding.x.field, 'seconds');
    assert.equal(encoding.y.field, 'loss');
    assert.equal(encoding.color.field, 'run');
    assert.equal(encoding.strokeDash.field, 'when');
    assert.deepEqual(encoding.strokeDash.scale, { domain: [THIS_RUN, EARLIER], range: [[1, 0], [6, 4]] });
    assert.deepEqual(encoding.opacity, { condition: { test: { field: 'when', oneOf: [EARLIER] }, value: 0.5 }, value: 1 });
    assert.deepEqual(compileVegaLite(spec).warnings, []);
    const svg = await renderSvg(spec);
    for (const text of ['Edits compared', 'validation loss', 'training time (s)', THIS_RUN, EARLIER, 'baseline (']) assert.ok(svg.includes(text), text);
    const defaults = overlayChart({ title: 't', current: [second], earlier: [] }).encoding as Record<string, { field: string }>;
    assert.equal(defaults.x.field, 'epoch');
    assert.equal(defaults.y.field, 'accuracy');
  });
});

describe('lineChart strokeDash', () => {
  const data = [
    { run: 'a', when: 'now', epoch: 1, acc: 0.5 }, { run: 'a', when: 'now', epoch: 2, acc: 0.6 },
    { run: 'b', when: 'before', epoch: 1, acc: 0.4 }, { run: 'b', when: 'before', epoch: 2, acc: 0.55 },
  ];
  const options = { title: 't', data, x: { field: 'epoch', title: 'epoch' }, y: { field: 'acc', title: 'acc' }, color: { field: 'run', title: 'run' } };

  it('is absent unless asked for', () => {
    const encoding = lineChart(options).encoding as Record<string, unknown>;
    assert.equal(encoding.strokeDash, undefined);
    assert.equal(encoding.opacity, undefined);
    assert.ok(lineFigure(options).data.every((t) => !('line' in t) && !('opacity' in t)));
  });

  it('dashes and fades the lines of the later values, in Plotly too', () => {
    const dashed = { ...options, strokeDash: { field: 'when', title: 'when', values: ['now', 'before'] } };
    const encoding = lineChart(dashed).encoding as Record<string, unknown>;
    assert.deepEqual(encoding.strokeDash, { field: 'when', type: 'nominal', title: 'when', scale: { domain: ['now', 'before'], range: [[1, 0], [6, 4]] }, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 } });
    assert.deepEqual(lineFigure(dashed).data.map((t) => [t.name, t.line, t.opacity]), [['a', undefined, undefined], ['b', { dash: 'dash' }, 0.5]]);
  });
});

/** Epochs in a run's record so far (0 while it cannot be read yet). */
function epochsRecorded(runDir: string): number {
  try {
    return readRun(runDir).epochs.length;
  } catch {
    return 0;
  }
}

describe('an experiment cell rerun after an interrupt', () => {
  const settings: Partial<TrainConfig> = { ...tiny, trainSubset: 512, epochs: 3, baseLr: 0.05, momentum: 0.9 };
  const lesson = 'resume-test';

  /**
   * The experiment in a process of its own, killed (SIGKILL: no end recorded) once epoch 1 is
   * checkpointed and recorded (the checkpoint comes first: a kill between the two leaves a run
   * with nothing to show, which resumes but is not listed).
   */
  async function killedAfterEpoch1(label: string): Promise<string> {
    const lib = path.join(__dirname, '..', 'lib', 'lessons', 'experiment.js');
    const script = `require(${JSON.stringify(lib)}).runExperiment(${JSON.stringify(label)}, ${JSON.stringify(settings)}, { lesson: ${JSON.stringify(lesson)} })`;
    const before = new Set(fs.readdirSync(runsDir));
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    for (const deadline = Date.now() + 60_000; ;) {
      assert.ok(Date.now() < deadline, 'no checkpoint of epoch 1 within a minute');
      const dir = fs.readdirSync(runsDir).find((name) => !before.has(name));
      if (dir != null && listCheckpoints(path.join(runsDir, dir)).length > 0 && epochsRecorded(path.join(runsDir, dir)) > 0) {
        child.kill('SIGKILL');
        await exited;
        return path.join(runsDir, dir);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('continues its run from the checkpoint, says so, and ends where an uninterrupted run ends', async () => {
    const straight = await runExperiment('straight', settings, { lesson });
    const killed = await killedAfterEpoch1('interrupted one');
    const shown = earlierRuns({ runsDir, lesson, label: 'interrupted one' });
    assert.deepEqual(shown.map((e) => e.outcome), ['interrupted']);
    assert.match(overlayRows([], shown).map((r) => String(r.run))[0], /^interrupted one \(\d\d:\d\d, \d+ \w+, interrupted\)$/);
    const logged: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => { logged.push(args.join(' ')); };
    let rerun: Experiment;
    try {
      rerun = await runExperiment('interrupted one', settings, { lesson });
    } finally {
      console.log = log;
    }
    assert.equal(rerun.runDir, killed);
    assert.match(logged.join('\n'), /interrupted one: continuing its interrupted run from the checkpoint of epoch 1 .*resume: false/);
    assert.deepEqual(rerun.epochs.map((e) => e.valAccuracy), straight.epochs.map((e) => e.valAccuracy));
    assert.deepEqual(rerun.epochs.map((e) => e.trainLoss), straight.epochs.map((e) => e.trainLoss));
    assert.equal(earlierRuns({ runsDir, lesson, label: 'interrupted one' })[0].outcome, 'completed');
  });

  it('starts afresh with resume: false, or when a setting changed', async () => {
    const killed = await killedAfterEpoch1('fresh one');
    const fresh = await runExperiment('fresh one', settings, { lesson, resume: false });
    assert.notEqual(fresh.runDir, killed);
    const changed = await runExperiment('fresh one', { ...settings, baseLr: 0.02 }, { lesson });
    assert.notEqual(changed.runDir, killed);
    assert.equal(readRun(killed).end, null);
  });
});
