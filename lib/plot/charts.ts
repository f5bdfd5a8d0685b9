/**
 * Chart builders for the lessons. Each returns a Vega-Lite v5 spec with its data inline (render it
 * with `vegaLiteBundle`); `lineFigure` also gives the Plotly figure of a line chart, for zooming
 * into long curves (render it with `plotlyBundle(lineFigure(o), {fallback: lineChart(o)})`).
 *
 * Field names are used as Vega-Lite field names: keep them plain (no dots or brackets).
 */
import type { EpochMetrics } from '../train/metrics';
import { PlotlyFigure, VEGA_LITE_SCHEMA, VegaLiteSpec } from './types';
import { wordWrap } from '../text/wrap';

const WIDTH = 480;
const HEIGHT = 300;

export type Row = Record<string, unknown>;

export interface AxisField {
  field: string;
  title: string;
  /** d3-format of tooltips and axis labels, e.g. '.3f', '.1%', ',d'. */
  format?: string;
  /** Default 'linear'. A log scale suits losses. */
  scale?: 'linear' | 'log';
  /** Include zero in the scale (default false for y, and for x). */
  zero?: boolean;
  /** Default 'quantitative'. */
  type?: 'quantitative' | 'ordinal' | 'nominal' | 'temporal';
}

export interface DashField {
  field: string;
  title: string;
  /** Every value of the field, the solid one first; at most four. */
  values: string[];
}

const DASHES = [[1, 0], [6, 4], [2, 2], [8, 3, 2, 3]];
/** A legend below the chart, one entry a line, labels never cut: they carry the runs' settings. */
const WHOLE_LABELS = { orient: 'bottom', direction: 'vertical', labelLimit: 0 } as const;
const FADED = 0.5;

export interface LineChartOptions {
  title: string;
  x: AxisField;
  y: AxisField;
  /** One line per value of this field (e.g. the run's label). */
  color?: { field: string; title: string };
  /** Dash and fade lines by this field: its first value drawn solid, the others dashed and faded (e.g. earlier runs). */
  strokeDash?: DashField;
  data: Row[];
  /** Draw a point at each datum (default: when there are at most 200 rows). */
  points?: boolean;
  width?: number;
  height?: number;
}

function encodeAxis(axis: AxisField): Record<string, unknown> {
  const type = axis.type ?? 'quantitative';
  const enc: Record<string, unknown> = { field: axis.field, type, title: axis.title };
  if (type === 'quantitative') {
    enc.scale = axis.scale === 'log' ? { type: 'log' } : { zero: axis.zero ?? false };
  }
  // Whole-number axes (epochs, workers) get whole-number ticks only.
  if (axis.format) enc.axis = axis.format === 'd' ? { format: 'd', tickMinStep: 1 } : { format: axis.format };
  return enc;
}

function tooltipOf(axis: AxisField): Record<string, unknown> {
  const t: Record<string, unknown> = { field: axis.field, type: axis.type ?? 'quantitative', title: axis.title };
  if (axis.format) t.format = axis.format;
  return t;
}

/** Average width of a character of the title's bold 13 px font, in pixels. */
const TITLE_CHAR_PX = 7.5;

/** The title in lines that fit the chart's width (Vega-Lite cuts a long one-line title off). */
export function wrapTitle(title: string, width: number): string | string[] {
  const perLine = Math.max(20, Math.floor(width / TITLE_CHAR_PX));
  return title.length <= perLine ? title : wordWrap(title, perLine);
}

/** What every single-view chart starts with: schema, title, size, white background, inline data. */
function chartFrame(title: string, size: { width?: number; height?: number }, values: Row[]): VegaLiteSpec {
  const width = size.width ?? WIDTH;
  const lines = wrapTitle(title, width);
  return { $schema: VEGA_LITE_SCHEMA, title: typeof lines === 'string' ? lines : { text: lines }, width, height: size.height ?? HEIGHT, background: 'white', data: { values } };
}

/** A line per series: validation accuracy vs epoch per run, loss vs time, ... */
export function lineChart(o: LineChartOptions): VegaLiteSpec {
  const encoding: Record<string, unknown> = { x: encodeAxis(o.x), y: encodeAxis(o.y) };
  const tooltip: Record<string, unknown>[] = [];
  if (o.color) {
    encoding.color = { field: o.color.field, type: 'nominal', title: o.color.title, legend: WHOLE_LABELS };
    tooltip.push({ field: o.color.field, type: 'nominal', title: o.color.title });
  }
  if (o.strokeDash) {
    const { field, title, values } = o.strokeDash;
    encoding.strokeDash = { field, type: 'nominal', title, scale: { domain: values, range: DASHES.slice(0, values.length) }, legend: WHOLE_LABELS };
    encoding.opacity = { condition: { test: { field, oneOf: values.slice(1) }, value: FADED }, value: 1 };
    tooltip.push({ field, type: 'nominal', title });
  }
  tooltip.push(tooltipOf(o.x), tooltipOf(o.y));
  encoding.tooltip = tooltip;
  return {
    ...chartFrame(o.title, o, o.data),
    mark: { type: 'line', point: o.points ?? o.data.length <= 200 },
    encoding,
  };
}

/** The Plotly figure of the same line chart: one trace per color value, zoom and hover included. */
export function lineFigure(o: LineChartOptions): PlotlyFigure {
  const groups = new Map<string, Row[]>();
  for (const row of o.data) {
    const key = o.color ? String(row[o.color.field]) : o.y.title;
    let rows = groups.get(key);
    if (!rows) groups.set(key, (rows = []));
    rows.push(row);
  }
  const points = o.points ?? o.data.length <= 200;
  const fmt = (axis: AxisField, v: 'x' | 'y') => `%{${v}${axis.format ? `:${axis.format}` : ''}}`;
  const dashed = (rows: Row[]) => o.strokeDash != null && String(rows[0][o.strokeDash.field]) !== o.strokeDash.values[0];
  const data = [...groups].map(([name, rows]) => ({
    type: 'scatter',
    mode: points ? 'lines+markers' : 'lines',
    name,
    ...(dashed(rows) ? { line: { dash: 'dash' }, opacity: FADED } : {}),
    x: rows.map((r) => r[o.x.field]),
    y: rows.map((r) => r[o.y.field]),
    hovertemplate: `${o.x.title}: ${fmt(o.x, 'x')}<br>${o.y.title}: ${fmt(o.y, 'y')}<extra>${name}</extra>`,
  }));
  const axis = (a: AxisField) => ({
    title: { text: a.title },
    ...(a.scale === 'log' ? { type: 'log' } : {}),
    ...(a.format ? { tickformat: a.format } : {}),
  });
  return {
    data,
    layout: {
      title: { text: o.title },
      width: (o.width ?? WIDTH) + 200,
      height: (o.height ?? HEIGHT) + 110,
      margin: { l: 70, r: 20, t: 50, b: 60 },
      xaxis: axis(o.x),
      yaxis: axis(o.y),
      showlegend: groups.size > 1,
      ...(o.color ? { legend: { title: { text: o.color.title } } } : {}),
      paper_bgcolor: 'white',
    },
  };
}

export interface ThroughputRow {
  workers: number;
  imagesPerSec: number;
  /** Which setup (engine, batch, machine); one line per label. */
  label?: string;
}

export interface ThroughputChartOptions {
  rows: ThroughputRow[];
  /** Draw the ideal linear scaling, dashed: the fewest workers' throughput times workers / those workers (default true). */
  ideal?: boolean;
  /** Logarithmic axes, for projections to hundreds of workers. */
  log?: boolean;
  /** The rows come from a model, not a measurement: the lines say "projected" (default false). */
  projected?: boolean;
  title?: string;
  width?: number;
  height?: number;
}

const MEASURED = 'measured';
const PROJECTED = 'projected (cost model)';
const IDEAL = 'ideal (linear)';

/** Images per second against workers, with the ideal linear line dashed, and the scaling efficiency in tooltips. */
export function throughputChart(o: ThroughputChartOptions): VegaLiteSpec {
  const showIdeal = o.ideal ?? true;
  const kind = o.projected ? PROJECTED : MEASURED;
  const labels = [...new Set(o.rows.map((r) => r.label ?? ''))];
  const values: Row[] = [];
  for (const label of labels) {
    const rows = o.rows.filter((r) => (r.label ?? '') === label).sort((a, b) => a.workers - b.workers);
    const base = rows[0];
    for (const r of rows) {
      const ideal = (base.imagesPerSec * r.workers) / base.workers;
      values.push({ label, workers: r.workers, imagesPerSec: r.imagesPerSec, kind, ideal, efficiency: r.imagesPerSec / ideal });
      if (showIdeal) values.push({ label, workers: r.workers, imagesPerSec: ideal, kind: IDEAL });
    }
  }
  const several = labels.length > 1;
  const workers = [...new Set(o.rows.map((r) => r.workers))].sort((a, b) => a - b);
  const x = { field: 'workers', type: 'quantitative', title: 'Workers', axis: { values: workers, format: 'd' }, scale: o.log ? { type: 'log' } : { zero: false } };
  const y = { field: 'imagesPerSec', type: 'quantitative', title: 'Throughput (images/s)', scale: o.log ? { type: 'log' } : { zero: true } };
  const color = several ? { color: { field: 'label', type: 'nominal', title: 'Setup', legend: WHOLE_LABELS } } : {};
  const tooltip = [
    ...(several ? [{ field: 'label', type: 'nominal', title: 'Setup' }] : []),
    { field: 'workers', type: 'quantitative', title: 'Workers' },
    { field: 'imagesPerSec', type: 'quantitative', title: 'Images/s', format: ',.0f' },
    ...(showIdeal
      ? [
          { field: 'ideal', type: 'quantitative', title: 'Ideal images/s', format: ',.0f' },
          { field: 'efficiency', type: 'quantitative', title: 'Scaling efficiency', format: '.0%' },
        ]
      : []),
  ];
  return {
    ...chartFrame(o.title ?? 'Throughput against workers', o, values),
    encoding: { x, y, ...color },
    layer: [
      {
        mark: { type: 'line' },
        encoding: {
          strokeDash: {
            field: 'kind',
            type: 'nominal',
            title: null,
            scale: { domain: [kind, IDEAL], range: [[1, 0], [6, 4]] },
            legend: showIdeal ? WHOLE_LABELS : null,
          },
        },
      },
      {
        transform: [{ filter: { field: 'kind', equal: kind } }],
        mark: { type: 'point', filled: true, size: 60 },
        encoding: { tooltip },
      },
    ],
  };
}

export interface StepTimeRow {
  workers: number;
  /** Milliseconds per step computing gradients and applying the update. */
  computeMs: number;
  /** Milliseconds per step waiting for the slowest worker. */
  waitMs: number;
  /** Milliseconds per step in the all-reduce. */
  allReduceMs: number;
  label?: string;
}

const PARTS: { key: 'computeMs' | 'waitMs' | 'allReduceMs'; name: string; color: string }[] = [
  { key: 'computeMs', name: 'compute', color: '#4c78a8' },
  { key: 'waitMs', name: 'wait for slowest', color: '#f58518' },
  { key: 'allReduceMs', name: 'all-reduce', color: '#e45756' },
];

/** Stacked bars of where a step's time goes (compute, waiting, all-reduce), one bar per row. */
export function stackedStepTime(o: { rows: StepTimeRow[]; title?: string; width?: number; height?: number }): VegaLiteSpec {
  const values: Row[] = [];
  const groups: string[] = [];
  for (const r of o.rows) {
    const group = r.label ? `${r.label}, ${r.workers}` : String(r.workers);
    groups.push(group);
    const total = r.computeMs + r.waitMs + r.allReduceMs;
    PARTS.forEach((p, order) => {
      values.push({ group, workers: r.workers, label: r.label ?? '', part: p.name, order, ms: r[p.key], share: total > 0 ? r[p.key] / total : 0, totalMs: total });
    });
  }
  const labelled = o.rows.some((r) => r.label);
  return {
    ...chartFrame(o.title ?? 'Time per step', o, values),
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'group', type: 'ordinal', sort: groups, title: labelled ? 'Setup, workers' : 'Workers', axis: { labelAngle: 0 } },
      y: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'Time per step (ms)' },
      color: {
        field: 'part',
        type: 'nominal',
        title: 'Part of the step',
        scale: { domain: PARTS.map((p) => p.name), range: PARTS.map((p) => p.color) },
      },
      order: { field: 'order', type: 'quantitative' },
      tooltip: [
        ...(labelled ? [{ field: 'label', type: 'nominal', title: 'Setup' }] : []),
        { field: 'workers', type: 'quantitative', title: 'Workers' },
        { field: 'part', type: 'nominal', title: 'Part' },
        { field: 'ms', type: 'quantitative', title: 'ms per step', format: '.1f' },
        { field: 'share', type: 'quantitative', title: 'Share of the step', format: '.0%' },
        { field: 'totalMs', type: 'quantitative', title: 'Step (ms)', format: '.1f' },
      ],
    },
  };
}

export interface ScheduleChartOptions {
  /** The learning rate; per step, give `epoch = epoch - 1 + step / stepsPerEpoch` (fractional epochs). */
  lr: { epoch: number; lr: number; run?: string }[];
  /** Validation accuracy after each epoch. */
  accuracy: { epoch: number; valAccuracy: number; run?: string }[];
  title?: string;
  /** 'vertical' (default): learning rate above accuracy, sharing the epoch axis; 'horizontal': side by side. */
  layout?: 'vertical' | 'horizontal';
  width?: number;
}

/** The learning rate schedule next to the validation accuracy it produced: two views, one epoch axis. */
export function scheduleChart(o: ScheduleChartOptions): VegaLiteSpec {
  const vertical = (o.layout ?? 'vertical') === 'vertical';
  const width = o.width ?? (vertical ? WIDTH : 300);
  const height = vertical ? 150 : 220;
  const runs = new Set([...o.lr, ...o.accuracy].map((r) => r.run ?? ''));
  const several = runs.size > 1 || !runs.has('');
  const color = several ? { color: { field: 'run', type: 'nominal', title: 'Run' } } : {};
  const runTip = several ? [{ field: 'run', type: 'nominal', title: 'Run' }] : [];
  const x = { field: 'epoch', type: 'quantitative', title: 'Epoch', scale: { zero: false } };
  const lrView = {
    title: 'Learning rate',
    width,
    height,
    data: { values: o.lr.map((r) => ({ epoch: r.epoch, lr: r.lr, run: r.run ?? '' })) },
    mark: { type: 'line', point: o.lr.length <= 60 },
    encoding: {
      x,
      y: { field: 'lr', type: 'quantitative', title: 'Learning rate' },
      ...color,
      tooltip: [...runTip, { field: 'epoch', type: 'quantitative', title: 'Epoch', format: '.2f' }, { field: 'lr', type: 'quantitative', title: 'Learning rate', format: '.4g' }],
    },
  };
  const accView = {
    title: 'Validation accuracy',
    width,
    height,
    data: { values: o.accuracy.map((r) => ({ epoch: r.epoch, valAccuracy: r.valAccuracy, run: r.run ?? '' })) },
    mark: { type: 'line', point: true },
    encoding: {
      x,
      y: { field: 'valAccuracy', type: 'quantitative', title: 'Validation accuracy', scale: { zero: false } },
      ...color,
      tooltip: [...runTip, { field: 'epoch', type: 'quantitative', title: 'Epoch' }, { field: 'valAccuracy', type: 'quantitative', title: 'Validation accuracy', format: '.3f' }],
    },
  };
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: o.title ?? 'Learning rate and validation accuracy',
    background: 'white',
    ...(vertical ? { vconcat: [lrView, accView] } : { hconcat: [lrView, accView] }),
    resolve: { scale: { x: 'shared', color: 'shared' } },
  };
}

/** A run's per-epoch metrics as chart rows, each tagged with the run's label. */
export function epochRows(epochs: EpochMetrics[], run = ''): (EpochMetrics & { run: string })[] {
  return epochs.map((m) => ({ ...m, run }));
}

/** Mean milliseconds per step of compute, waiting and all-reduce over some epochs of a run. */
export function stepTimeRow(epochs: EpochMetrics[], stepsPerEpoch: number, label?: string): StepTimeRow {
  const steps = Math.max(1, epochs.length * stepsPerEpoch);
  const sum = (f: (m: EpochMetrics) => number) => (epochs.reduce((s, m) => s + f(m), 0) * 1000) / steps;
  return {
    workers: epochs.length > 0 ? epochs[0].workers : 1,
    computeMs: sum((m) => m.computeSeconds),
    waitMs: sum((m) => m.waitSeconds),
    allReduceMs: sum((m) => m.allReduceSeconds),
    ...(label === undefined ? {} : { label }),
  };
}

export interface TimelineBar {
  /** The row the bar is drawn in (e.g. "rank 0: backward"). */
  lane: string;
  /** What the bar is (e.g. "bucket 2: 0.80 MB"). */
  what: string;
  start: number;
  end: number;
  /** A group of runs, one chart column each (e.g. the configuration). */
  run: string;
}

/** One step on a time axis: the backward pass, each bucket's all-reduce, the wait; one panel per run. */
export function timelineChart(o: { title: string; bars: TimelineBar[]; width?: number }): VegaLiteSpec {
  return {
    $schema: VEGA_LITE_SCHEMA, title: o.title, background: 'white', data: { values: o.bars },
    // Each run's label above its panel, whole; each panel its own lanes.
    facet: { row: { field: 'run', type: 'nominal', title: null, header: { labelOrient: 'top', labelAnchor: 'start', labelAngle: 0, labelLimit: 0, labelFontWeight: 'bold' } } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: o.width ?? WIDTH, height: { step: 18 },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'lane', type: 'nominal', title: null, sort: null, axis: { labelLimit: 300 } },
        x: { field: 'start', type: 'quantitative', title: 'ms from the start of the step' },
        x2: { field: 'end' },
        color: { field: 'what', type: 'nominal', title: 'what', legend: WHOLE_LABELS },
      },
    },
  };
}

/**
 * Repeated runs: a line through the mean of each x, a rule from the smallest to the largest value,
 * and every run as a point (`data` holds one row per run).
 */
export function spreadChart(o: LineChartOptions): VegaLiteSpec {
  const color = o.color ? { color: { field: o.color.field, type: 'nominal', title: o.color.title, legend: WHOLE_LABELS } } : {};
  const x = encodeAxis(o.x);
  const y = encodeAxis(o.y);
  return {
    ...chartFrame(o.title, o, o.data),
    layer: [
      { mark: { type: 'line' }, encoding: { x, y: { ...y, aggregate: 'mean' }, ...color } },
      { mark: { type: 'rule' }, encoding: { x, y: { ...y, aggregate: 'min' }, y2: { field: o.y.field, aggregate: 'max' }, ...color } },
      { mark: { type: 'point', opacity: 0.6 }, encoding: { x, y, ...color, tooltip: [tooltipOf(o.x), tooltipOf(o.y)] } },
    ],
  };
}
