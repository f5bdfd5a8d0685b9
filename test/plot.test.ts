import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { after, describe, it } from 'node:test';
import type { EpochMetrics } from '../lib/train/metrics';
import {
  MIME,
  PLOT_DIR_ENV,
  VEGA_LITE_SCHEMA,
  compileVegaLite,
  htmlToText,
  lineChart,
  lineFigure,
  liveDisplay,
  plotlyBundle,
  plotlyToVegaLite,
  progressFraction,
  progressHtml,
  progressText,
  renderSvg,
  resetPlotlyEmbedding,
  scheduleChart,
  show,
  stackedStepTime,
  stepTimeRow,
  svgFromBundle,
  throughputChart,
  trainingProgress,
  trainingTable,
  trainingTableBundle,
  spreadChart,
  vegaLiteBundle,
  type DisplayData,
  type MimeBundle,
  type VegaLiteSpec,
} from '../lib/plot';

/** Checks that every element is closed in order: enough to catch truncated or malformed SVG. */
function assertWellFormedSvg(svg: string): void {
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\s*$/);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = m;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else stack.push(name);
  }
  assert.deepEqual(stack, [], 'unclosed elements');
}

/** The static image of a bundle: a Vega-Lite bundle's image/svg+xml, a Plotly bundle's <img> in its text/html. */
function decodedSvg(bundle: MimeBundle): string {
  if (bundle[MIME.vegaLite] !== undefined) {
    assert.equal(typeof bundle[MIME.svg], 'string');
    assert.equal(bundle[MIME.html], undefined, 'text/html would outrank Vega in JupyterLab');
  } else {
    const html = bundle[MIME.html];
    assert.equal(typeof html, 'string');
    assert.match(html as string, /<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
  }
  const svg = svgFromBundle(bundle);
  assert.ok(svg);
  return svg;
}

function captureLog<T>(fn: () => T): { result: T; lines: string[] } {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  };
  try {
    return { result: fn(), lines };
  } finally {
    console.log = original;
  }
}

const accuracyRows = ['1 worker', '4 workers'].flatMap((run, r) =>
  [1, 2, 3, 4].map((epoch) => ({ run, epoch, valAccuracy: 0.75 + 0.03 * epoch + 0.01 * r })),
);
const accuracyChart = {
  title: 'Validation accuracy per epoch',
  x: { field: 'epoch', title: 'Epoch', format: 'd' },
  y: { field: 'valAccuracy', title: 'Validation accuracy', format: '.3f' },
  color: { field: 'run', title: 'Run' },
  data: accuracyRows,
};

function metrics(epoch: number, valAccuracy: number): EpochMetrics {
  return {
    epoch, cumulativeTime: epoch * 10, epochTime: 10, imagesPerSec: 600, trainLoss: 0.5, valLoss: 0.4, valAccuracy,
    lr: 0.05, workers: 2, computeSeconds: 8, waitSeconds: 0.5, allReduceSeconds: 1.5, communicationSeconds: 2, hiddenSeconds: 0.5,
  };
}

const tmpDirs: string[] = [];
function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plot-test-'));
  tmpDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('importing lib/plot', () => {
  it('loads neither vega, plotly, tfjs nor tslab', () => {
    const entry = path.resolve(__dirname, '..', 'lib', 'plot', 'index.js');
    const code = `require(${JSON.stringify(entry)}); console.log(JSON.stringify(Object.keys(require.cache)))`;
    const loaded = JSON.parse(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' })) as string[];
    const heavy = loaded.filter((f) => /node_modules[\\/](vega|vega-lite|plotly\.js-dist-min|@tensorflow|tslab)[\\/]/.test(f));
    assert.deepEqual(heavy, []);
    assert.ok(loaded.every((f) => !f.includes('node_modules')), `loaded: ${loaded.join(', ')}`);
  });
});

describe('vegaLiteBundle', () => {
  it('wraps a title too long for the chart into lines, every word drawn', async () => {
    const title = 'Final test accuracy after 3 epochs against the global batch: mean, range, every seed';
    const spec = lineChart({ title, ...{ x: { field: 'epoch', title: 'epoch' }, y: { field: 'accuracy', title: 'accuracy' }, data: [{ epoch: 1, accuracy: 0.5 }] } });
    const lines = (spec.title as { text: string[] }).text;
    assert.ok(Array.isArray(lines) && lines.length === 2, JSON.stringify(spec.title));
    assert.equal(lines.join(' '), title);
    const bundle = await vegaLiteBundle(spec);
    assert.equal(bundle[MIME.plain], title);
    const svg = decodedSvg(bundle);
    for (const line of lines) assert.ok(svg.includes(line), line);
    assert.equal(lineChart({ title: 'Short', x: { field: 'a', title: 'a' }, y: { field: 'b', title: 'b' }, data: [] }).title, 'Short');
  });

  it('draws whole legend labels, however long (they carry the settings of each run)', async () => {
    const long = 'batch 512, lr 0.4, warmup per iteration over the first epoch, seed 2';
    const rows = [{ run: long, epoch: 1, accuracy: 0.5 }, { run: long, epoch: 2, accuracy: 0.6 }, { run: 'short', epoch: 1, accuracy: 0.4 }];
    const axes = { x: { field: 'epoch', title: 'epoch' }, y: { field: 'accuracy', title: 'accuracy' }, color: { field: 'run', title: 'run' }, data: rows };
    for (const spec of [lineChart({ title: 'line', ...axes }), spreadChart({ title: 'spread', ...axes })]) {
      const svg = decodedSvg(await vegaLiteBundle(spec));
      assert.ok(svg.includes(long), `${spec.title}: the legend cuts "${long}"`);
    }
  });

  it('carries the Vega-Lite object and an image/svg+xml of valid SVG with titles and marks, and no text/html', async () => {
    const bundle = await vegaLiteBundle(lineChart(accuracyChart));
    const spec = bundle[MIME.vegaLite] as VegaLiteSpec & { data: { values: unknown[] } };
    assert.equal(typeof spec, 'object');
    assert.equal(spec.$schema, VEGA_LITE_SCHEMA);
    assert.match(String(spec.$schema), /vega-lite\/v5\.json$/);
    assert.equal(spec.data.values.length, accuracyRows.length);
    assert.equal(bundle[MIME.plain], 'Validation accuracy per epoch');
    const svg = decodedSvg(bundle);
    assertWellFormedSvg(svg);
    for (const text of ['Epoch', 'Validation accuracy', 'Run', '4 workers', 'Validation accuracy per epoch']) assert.ok(svg.includes(text), text);
    assert.ok((svg.match(/<path/g) ?? []).length >= 2, 'line marks');
  });

  it('adds $schema and a background to a bare spec, and can leave out the image', async () => {
    const bundle = await vegaLiteBundle({ data: { values: [{ a: 1, b: 2 }] }, mark: 'point', encoding: { x: { field: 'a', type: 'quantitative' } } }, { image: false });
    const spec = bundle[MIME.vegaLite] as VegaLiteSpec;
    assert.equal(spec.$schema, VEGA_LITE_SCHEMA);
    assert.equal(spec.background, 'white');
    assert.deepEqual(Object.keys(bundle).sort(), [MIME.vegaLite, MIME.plain].sort());
    assert.equal(bundle[MIME.plain], 'Vega-Lite chart');
  });
});

describe('chart builders', () => {
  const cases: [string, VegaLiteSpec, string[]][] = [
    ['lineChart', lineChart({ ...accuracyChart, y: { ...accuracyChart.y, scale: 'log' } }), ['Epoch', 'Validation accuracy']],
    [
      'throughputChart',
      throughputChart({ rows: [{ workers: 1, imagesPerSec: 600 }, { workers: 2, imagesPerSec: 1060 }, { workers: 4, imagesPerSec: 1900 }], ideal: true }),
      ['Workers', 'Throughput (images/s)', 'ideal (linear)'],
    ],
    [
      'throughputChart with labels',
      throughputChart({ rows: [{ workers: 1, imagesPerSec: 600, label: 'cnn' }, { workers: 2, imagesPerSec: 1000, label: 'cnn' }, { workers: 1, imagesPerSec: 14, label: 'wrn' }, { workers: 2, imagesPerSec: 27, label: 'wrn' }] }),
      ['Setup', 'wrn'],
    ],
    [
      'stackedStepTime',
      stackedStepTime({ rows: [{ workers: 1, computeMs: 60, waitMs: 0, allReduceMs: 0 }, { workers: 2, computeMs: 61, waitMs: 4, allReduceMs: 11 }] }),
      ['Workers', 'Time per step (ms)', 'all-reduce', 'wait for slowest', 'compute'],
    ],
    [
      'scheduleChart',
      scheduleChart({
        lr: Array.from({ length: 40 }, (_, i) => ({ epoch: i / 10, lr: 0.1 * Math.min(1, (i + 1) / 20) })),
        accuracy: [1, 2, 3, 4].map((epoch) => ({ epoch, valAccuracy: 0.7 + epoch * 0.04 })),
      }),
      ['Learning rate', 'Validation accuracy', 'Epoch'],
    ],
  ];
  for (const [name, spec, texts] of cases) {
    it(`${name} compiles without warnings and renders its titles`, async () => {
      assert.equal(spec.$schema, VEGA_LITE_SCHEMA);
      const { vega, warnings } = compileVegaLite(spec);
      assert.ok(vega && typeof vega === 'object');
      assert.deepEqual(warnings, []);
      const svg = await renderSvg(spec);
      assertWellFormedSvg(svg);
      for (const text of texts) assert.ok(svg.includes(text), `${name}: ${text}`);
      assert.ok(svg.includes('<path'), 'marks');
    });
  }

  it('throughputChart computes the ideal line and the efficiency from the fewest workers', () => {
    const spec = throughputChart({ rows: [{ workers: 4, imagesPerSec: 2000 }, { workers: 1, imagesPerSec: 600 }] });
    const values = (spec.data as { values: Record<string, unknown>[] }).values;
    const ideal4 = values.find((v) => v.kind === 'ideal (linear)' && v.workers === 4);
    const measured4 = values.find((v) => v.kind === 'measured' && v.workers === 4);
    assert.equal(ideal4?.imagesPerSec, 2400);
    assert.ok(Math.abs((measured4?.efficiency as number) - 2000 / 2400) < 1e-12);
    const dash = JSON.stringify(spec.layer);
    assert.ok(dash.includes('[6,4]'), 'dashed ideal line');
    const noIdeal = throughputChart({ rows: [{ workers: 1, imagesPerSec: 600 }], ideal: false });
    assert.ok((noIdeal.data as { values: Record<string, unknown>[] }).values.every((v) => v.kind === 'measured'));
  });

  it('stepTimeRow turns epoch seconds into milliseconds per step', () => {
    const row = stepTimeRow([metrics(1, 0.8), metrics(2, 0.85)], 100, 'cnn');
    assert.deepEqual(row, { workers: 2, computeMs: 80, waitMs: 5, allReduceMs: 15, label: 'cnn' });
  });
});

describe('plotlyBundle', () => {
  it('carries the figure, plotly.js once per process, and a static fallback image', async () => {
    resetPlotlyEmbedding();
    const figure = lineFigure(accuracyChart);
    const first = await plotlyBundle(figure, { fallback: lineChart(accuracyChart) });
    const second = await plotlyBundle(figure);
    for (const bundle of [first, second]) {
      const payload = bundle[MIME.plotly] as { data: { x: unknown[]; name: string }[]; layout: Record<string, unknown>; config: Record<string, unknown> };
      assert.equal(payload.data.length, 2);
      assert.deepEqual(payload.data.map((t) => t.name), ['1 worker', '4 workers']);
      assert.deepEqual(payload.layout.title, { text: 'Validation accuracy per epoch' });
      assert.equal(bundle[MIME.plain], 'Validation accuracy per epoch');
      const svg = decodedSvg(bundle);
      assertWellFormedSvg(svg);
      assert.ok(svg.includes('Epoch') && svg.includes('Validation accuracy') && svg.includes('<path'));
      assert.ok((bundle[MIME.html] as string).includes('Plotly.newPlot'));
    }
    const html1 = first[MIME.html] as string;
    const html2 = second[MIME.html] as string;
    const library = '/* plotly.js-dist-min ';
    assert.ok(html1.includes(library) && html1.includes('if (!window.Plotly) {\n') && html1.length > 1_000_000, 'library in the first output');
    assert.ok(!html2.includes(library) && html2.length < 200_000, 'not in later ones');
    const always = await plotlyBundle(figure, { includePlotlyJs: 'always' });
    assert.ok((always[MIME.html] as string).includes(library));
    // Every script parses; the library's is 4.8 MB.
    for (const m of html1.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) new vm.Script(m[1]);
  });

  it("draws with window.Plotly when the page has it, and keeps the image when it doesn't", async () => {
    resetPlotlyEmbedding();
    const bundle = await plotlyBundle(lineFigure(accuracyChart), { includePlotlyJs: 'never' });
    const html = bundle[MIME.html] as string;
    const id = /<div id="([^"]+)"/.exec(html)![1];
    const script = /<script type="text\/javascript">([\s\S]*?)<\/script>\s*$/.exec(html)![1];
    const run = (plotly: unknown) => {
      const el = { id, innerHTML: '<img src="fallback">' };
      const calls: unknown[][] = [];
      const timers: (() => void)[] = [];
      const window = plotly ? { Plotly: { newPlot: (...args: unknown[]) => (calls.push(args), Promise.resolve()) } } : {};
      const document = { currentScript: { previousElementSibling: el }, getElementById: () => el };
      vm.runInNewContext(script, { window, document, setTimeout: (f: () => void) => timers.push(f) });
      return { el, calls, timers };
    };
    const drawn = run(true);
    assert.equal(drawn.calls.length, 1);
    assert.equal(drawn.calls[0][0], drawn.el);
    assert.equal((drawn.calls[0][1] as unknown[]).length, 2);
    assert.equal(drawn.el.innerHTML, '');
    const offline = run(false);
    assert.equal(offline.calls.length, 0);
    assert.equal(offline.el.innerHTML, '<img src="fallback">');
    assert.equal(offline.timers.length, 1, 'waits for a library loaded later');
  });

  it('draws scatter and bar traces as Vega-Lite, and a placeholder for other traces', async () => {
    const spec = plotlyToVegaLite({
      data: [
        { type: 'scatter', mode: 'markers', x: [1, 2, 3], y: [3, 1, 2], name: 'a' },
        { type: 'scatter', mode: 'lines', x: [1, 2, 3], y: [1, 2, 3], name: 'b', line: { dash: 'dash' } },
      ],
      layout: { title: { text: 'T' }, xaxis: { title: { text: 'X axis' } }, yaxis: { title: 'Y axis' } },
    });
    assert.ok(spec);
    assert.deepEqual(compileVegaLite(spec).warnings, []);
    const svg = await renderSvg(spec);
    assert.ok(svg.includes('X axis') && svg.includes('Y axis'));
    assert.equal(plotlyToVegaLite({ data: [{ type: 'heatmap', z: [[1]] }] }), null);
    const heat = await plotlyBundle({ data: [{ type: 'heatmap', z: [[1, 2]] }], layout: { title: { text: 'Heat' } } }, { includePlotlyJs: 'never' });
    const placeholder = svgFromBundle(heat)!;
    assertWellFormedSvg(placeholder);
    assert.ok(placeholder.includes('Heat'));
  });
});

describe('show outside a kernel', () => {
  it(`prints the text and writes files to $${PLOT_DIR_ENV}`, async () => {
    const dir = tmpDir();
    const previous = process.env[PLOT_DIR_ENV];
    process.env[PLOT_DIR_ENV] = dir;
    try {
      const vega = await vegaLiteBundle(lineChart(accuracyChart));
      const plotly = await plotlyBundle(lineFigure(accuracyChart), { includePlotlyJs: 'never' });
      const { lines } = captureLog(() => {
        show(vega);
        show(plotly, { name: 'accuracy interactive' });
        show(trainingTableBundle([metrics(1, 0.8)], 'run <a>'));
      });
      assert.equal(lines[0], 'Validation accuracy per epoch');
      assert.ok(lines.some((l) => l.startsWith('run <a>\nEpoch =  1: Cumulative Time')));
      const files = fs.readdirSync(dir).sort();
      const svgFile = files.find((f) => f.endsWith('validation-accuracy-per-epoch.svg'));
      assert.ok(svgFile, files.join(', '));
      assertWellFormedSvg(fs.readFileSync(path.join(dir, svgFile), 'utf8'));
      const vl = JSON.parse(fs.readFileSync(path.join(dir, svgFile.replace(/\.svg$/, '.vl.json')), 'utf8')) as VegaLiteSpec;
      assert.equal(vl.$schema, VEGA_LITE_SCHEMA);
      const page = files.find((f) => f.endsWith('accuracy-interactive.html'))!;
      assert.ok(fs.readFileSync(path.join(dir, page), 'utf8').includes('<script src="plotly.min.js"></script>'));
      assert.ok(files.includes('plotly.min.js'));
      assert.ok(files.some((f) => f.endsWith('accuracy-interactive.plotly.json')));
      const table = files.find((f) => f.endsWith('run-a.html'))!;
      assert.ok(fs.readFileSync(path.join(dir, table), 'utf8').includes('run &lt;a&gt;'));
    } finally {
      if (previous === undefined) delete process.env[PLOT_DIR_ENV];
      else process.env[PLOT_DIR_ENV] = previous;
    }
  });

  it('writes nothing without the variable', () => {
    const previous = process.env[PLOT_DIR_ENV];
    delete process.env[PLOT_DIR_ENV];
    try {
      const { lines } = captureLog(() => show('<b>hello</b> <i>world</i>'));
      assert.deepEqual(lines, ['hello world']);
    } finally {
      if (previous !== undefined) process.env[PLOT_DIR_ENV] = previous;
    }
  });

  it('liveDisplay prints throttled lines and the last state on close', () => {
    const { lines } = captureLog(() => {
      const live = liveDisplay({ minIntervalMs: 60_000 });
      for (let step = 1; step <= 5; step++) live.update({ [MIME.plain]: `step ${step}` });
      live.close();
      live.update({ [MIME.plain]: 'after close' });
    });
    assert.deepEqual(lines, ['step 1', 'step 5']);
  });
});

describe('show inside the tslab kernel', () => {
  it("sends the whole bundle in one display_data through tslab's writer, and updates live displays in place", async () => {
    // The module the kernel loads; its writer is set while a cell runs.
    const jupyter = require('tslab/dist/jupyter') as { lastWriteDisplayData: ((d: DisplayData, update: boolean) => void) | null };
    const sent: { data: DisplayData; update: boolean }[] = [];
    jupyter.lastWriteDisplayData = (data, update) => sent.push({ data, update });
    try {
      const bundle = await vegaLiteBundle(lineChart(accuracyChart));
      const { lines } = captureLog(() => show(bundle));
      assert.deepEqual(lines, []);
      assert.equal(sent.length, 1);
      assert.equal(sent[0].update, false);
      assert.deepEqual(Object.keys(sent[0].data.data).sort(), [MIME.vegaLite, MIME.svg, MIME.plain].sort());
      // JupyterLab's Vega renderer is asked for SVG (its default is a canvas).
      assert.deepEqual(sent[0].data.metadata, { [MIME.vegaLite]: { embed_options: { renderer: 'svg' } } });
      assert.equal(typeof sent[0].data.data[MIME.vegaLite], 'object');

      sent.length = 0;
      const live = liveDisplay({ minIntervalMs: 0 });
      live.update('<b>1</b>');
      live.update({ [MIME.html]: '<b>2</b>', [MIME.plain]: '2' });
      live.close();
      assert.deepEqual(sent.map((s) => s.update), [false, true]);
      const id = sent[0].data.transient.display_id;
      assert.ok(id && sent.every((s) => s.data.transient.display_id === id));
      assert.deepEqual(sent[0].data.data, { [MIME.html]: '<b>1</b>', [MIME.plain]: '1' });
    } finally {
      jupyter.lastWriteDisplayData = null;
    }
  });
});

describe('progress views', () => {
  const state = { epoch: 2, epochs: 4, step: 50, steps: 100, imagesPerSec: 612.34, loss: 0.43219, valAccuracy: 0.8731, label: 'run <1>' };

  it('progressHtml shows the fraction of the run and the numbers', () => {
    assert.equal(progressFraction(state), 0.375);
    const html = progressHtml(state);
    assert.ok(html.includes('width:37.5%'));
    assert.ok(html.includes('612.3') && html.includes('0.4322') && html.includes('0.8731'));
    assert.ok(html.includes('run &lt;1&gt;') && !html.includes('run <1>'));
    assert.equal(progressText(state), 'run <1>: 37.5% | epoch 2/4 | step 50/100 | images/s 612.3 | loss 0.4322 | val accuracy 0.8731');
  });

  it('trainingTable lists every epoch and marks the best accuracy', () => {
    const html = trainingTable([metrics(1, 0.8), metrics(2, 0.86), metrics(3, 0.85)], 'Run A');
    assert.equal((html.match(/<tr>/g) ?? []).length, 4);
    assert.ok(html.includes('<caption') && html.includes('Run A'));
    const bold = html.split('<tr>').filter((r) => r.includes('font-weight:bold') && r.includes('<td'));
    assert.equal(bold.length, 1);
    assert.ok(bold[0].includes('0.8600'));
    assert.ok(htmlToText(html).includes('Val accuracy'));
  });

  it('trainingProgress follows training events', () => {
    const { lines } = captureLog(() => {
      const progress = trainingProgress(2, { minIntervalMs: 0 });
      progress.onEvent({ type: 'step', epoch: 1, step: 10, steps: 10, loss: 0.5, imagesPerSec: 100 });
      progress.onEvent({ type: 'epoch', metrics: metrics(1, 0.81) });
      progress.close();
    });
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^50\.0% \| epoch 1\/2 \| step 10\/10/);
    assert.match(lines[1], /val accuracy 0\.8100/);
  });
});
