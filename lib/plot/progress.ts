/**
 * Small HTML views of training: a progress line for live displays, and a run's per-epoch table.
 * Inline styles only (no <style> element), so they look the same in JupyterLab, classic Notebook
 * and exported HTML.
 */
import type { TrainEvent } from '../train/events';
import { EpochMetrics, formatEpochLine } from '../train/metrics';
import { LiveDisplay, LiveDisplayOptions, liveDisplay } from './display';
import { MIME, MimeBundle, escapeHtml } from './types';

export interface ProgressState {
  /** 1-based, as in the training events. */
  epoch: number;
  epochs: number;
  /** Steps done in this epoch (1-based: the step just finished). */
  step: number;
  steps: number;
  imagesPerSec?: number;
  /** Training loss of the last step. */
  loss?: number;
  /** Of the last finished epoch. */
  valAccuracy?: number;
  valLoss?: number;
  lr?: number;
  /** Seconds since training started. */
  elapsedSeconds?: number;
  /** Run label or id. */
  label?: string;
}

/** Fraction of the whole run done, 0..1. */
export function progressFraction(s: ProgressState): number {
  if (s.epochs <= 0) return 0;
  const inEpoch = s.steps > 0 ? Math.min(1, Math.max(0, s.step / s.steps)) : 0;
  return Math.min(1, Math.max(0, (s.epoch - 1 + inEpoch) / s.epochs));
}

function fields(s: ProgressState): [string, string][] {
  const out: [string, string][] = [
    ['epoch', `${s.epoch}/${s.epochs}`],
    ['step', `${s.step}/${s.steps}`],
  ];
  if (s.imagesPerSec !== undefined) out.push(['images/s', s.imagesPerSec.toFixed(1)]);
  if (s.loss !== undefined) out.push(['loss', s.loss.toFixed(4)]);
  if (s.lr !== undefined) out.push(['lr', s.lr.toPrecision(3)]);
  if (s.valLoss !== undefined) out.push(['val loss', s.valLoss.toFixed(4)]);
  if (s.valAccuracy !== undefined) out.push(['val accuracy', s.valAccuracy.toFixed(4)]);
  if (s.elapsedSeconds !== undefined) out.push(['elapsed', `${s.elapsedSeconds.toFixed(1)} s`]);
  return out;
}

/** One text line: "run: 37.5% | epoch 2/4 | step 120/469 | images/s 612.0 | loss 0.4321". */
export function progressText(s: ProgressState): string {
  const pct = `${(progressFraction(s) * 100).toFixed(1)}%`;
  return [(s.label ? `${s.label}: ` : '') + pct, ...fields(s).map(([k, v]) => `${k} ${v}`)].join(' | ');
}

/** A progress bar over the whole run and a one-row table of the current numbers. */
export function progressHtml(s: ProgressState): string {
  const pct = progressFraction(s) * 100;
  const cells = fields(s);
  const cell = 'padding:2px 10px;text-align:right;border:none';
  return '<div style="font-family:sans-serif;font-size:13px;max-width:640px">' +
    (s.label ? `<div style="font-weight:bold;margin-bottom:2px">${escapeHtml(s.label)}</div>` : '') +
    '<div style="display:flex;align-items:center;gap:8px">' +
    '<div style="flex:1;height:12px;background:#e6e6e6;border-radius:3px;overflow:hidden">' +
    `<div style="width:${pct.toFixed(1)}%;height:100%;background:#4c78a8"></div></div>` +
    `<span style="min-width:48px;text-align:right">${pct.toFixed(1)}%</span></div>` +
    '<table style="border-collapse:collapse;margin-top:4px"><tr>' +
    cells.map(([k]) => `<th style="${cell};font-weight:normal;color:#666">${escapeHtml(k)}</th>`).join('') +
    '</tr><tr>' +
    cells.map(([, v]) => `<td style="${cell};font-variant-numeric:tabular-nums">${escapeHtml(v)}</td>`).join('') +
    '</tr></table></div>';
}

/** Progress as a bundle: HTML in notebooks, one text line in a terminal. */
export function progressBundle(s: ProgressState): MimeBundle {
  return { [MIME.html]: progressHtml(s), [MIME.plain]: progressText(s) };
}

const COLUMNS: { title: string; value: (m: EpochMetrics) => string }[] = [
  { title: 'Epoch', value: (m) => String(m.epoch) },
  { title: 'Epoch time (s)', value: (m) => m.epochTime.toFixed(2) },
  { title: 'Cumulative (s)', value: (m) => m.cumulativeTime.toFixed(2) },
  { title: 'Images/s', value: (m) => m.imagesPerSec.toFixed(1) },
  { title: 'Train loss', value: (m) => m.trainLoss.toFixed(4) },
  { title: 'Val loss', value: (m) => m.valLoss.toFixed(4) },
  { title: 'Val accuracy', value: (m) => m.valAccuracy.toFixed(4) },
  { title: 'LR', value: (m) => m.lr.toPrecision(3) },
  { title: 'Workers', value: (m) => String(m.workers) },
  { title: 'Compute (s)', value: (m) => m.computeSeconds.toFixed(2) },
  { title: 'Wait (s)', value: (m) => m.waitSeconds.toFixed(2) },
  { title: 'All-reduce (s)', value: (m) => m.allReduceSeconds.toFixed(2) },
];

/** A run's per-epoch metrics as an HTML table; the best validation accuracy is in bold. */
export function trainingTable(epochs: EpochMetrics[], caption?: string): string {
  const best = epochs.reduce((b, m, i) => (b < 0 || m.valAccuracy > epochs[b].valAccuracy ? i : b), -1);
  const cell = 'padding:3px 8px;text-align:right;border-bottom:1px solid #ddd';
  const head = COLUMNS.map((c) => `<th style="${cell};border-bottom:2px solid #999">${escapeHtml(c.title)}</th>`).join('');
  const rows = epochs
    .map((m, i) => {
      const weight = i === best ? ';font-weight:bold' : '';
      return '<tr>' + COLUMNS.map((c) => `<td style="${cell}${weight}">${escapeHtml(c.value(m))}</td>`).join('') + '</tr>';
    })
    .join('');
  return '<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px;font-variant-numeric:tabular-nums">' +
    (caption ? `<caption style="text-align:left;font-weight:bold;padding-bottom:4px">${escapeHtml(caption)}</caption>` : '') +
    `<thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

/** The table as a bundle; its text/plain is the course's per-epoch lines. */
export function trainingTableBundle(epochs: EpochMetrics[], caption?: string): MimeBundle {
  const lines = epochs.map(formatEpochLine);
  return { [MIME.html]: trainingTable(epochs, caption), [MIME.plain]: (caption ? [caption, ...lines] : lines).join('\n') };
}

/**
 * A live progress display fed by training events: pass `onEvent` as the trainer's hook. It shows
 * the progress bar during the run and, after each epoch, the per-epoch table below it.
 */
export function trainingProgress(
  epochs: number,
  options: LiveDisplayOptions & { label?: string } = {},
): { onEvent: (event: TrainEvent) => void; display: LiveDisplay; close: () => void } {
  const display = liveDisplay(options);
  const started = Date.now();
  const done: EpochMetrics[] = [];
  let state: ProgressState = { epoch: 1, epochs, step: 0, steps: 0, label: options.label };
  const render = (): MimeBundle => {
    const p = progressBundle(state);
    if (done.length === 0) return p;
    return {
      [MIME.html]: `${p[MIME.html] as string}<div style="margin-top:6px">${trainingTable(done)}</div>`,
      [MIME.plain]: p[MIME.plain],
    };
  };
  const onEvent = (event: TrainEvent) => {
    if (event.type === 'step') {
      state = { ...state, epoch: event.epoch, step: event.step, steps: event.steps, loss: event.loss, imagesPerSec: event.imagesPerSec, elapsedSeconds: (Date.now() - started) / 1000 };
      display.update(render());
    } else if (event.type === 'epoch') {
      const m = event.metrics;
      done.push(m);
      state = { ...state, epoch: m.epoch, step: state.steps, imagesPerSec: m.imagesPerSec, valAccuracy: m.valAccuracy, valLoss: m.valLoss, lr: m.lr, elapsedSeconds: (Date.now() - started) / 1000 };
      display.update(render());
    }
  };
  return { onEvent, display, close: () => display.close(render()) };
}
