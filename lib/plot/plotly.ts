/**
 * Interactive Plotly charts that still show when opened offline without JavaScript.
 *
 * What `plotlyBundle` emits:
 * - `application/vnd.plotly.v1+json`: {data, layout, config}; JupyterLab with the Plotly extension and
 *   VS Code draw it themselves.
 * - `text/html`, in this order:
 *   1. only in the first Plotly output of this process (`includePlotlyJs: 'auto'`): one <script>
 *      holding the whole of plotly.js-dist-min (about 4.8 MB, MIT licence), inside
 *      `if (!window.Plotly) { ... }`, so it defines `window.Plotly` once per page;
 *   2. a <div> holding a static SVG image of the same chart (an <img> with a base64 data URL,
 *      drawn headless by Vega from an equivalent Vega-Lite spec);
 *   3. a small <script> that, once `window.Plotly` exists (it polls up to 10 s), empties the div and
 *      calls `Plotly.newPlot` there; when Plotly never comes (scripts blocked, untrusted notebook,
 *      the output holding the library was cleared) or fails, the static image stays.
 * - `text/plain`: the title.
 *
 * Later outputs of the same process carry only 2 and 3 and rely on the library loaded by the first.
 * Restarting the kernel starts over, so "Restart & Run All" puts the library in the first output.
 * An output that is later overwritten in place (liveDisplay) should not be the one holding the
 * library: pass `includePlotlyJs: 'always'` there, or use Vega-Lite charts for live views.
 */
import * as fs from 'fs';
import * as path from 'path';
import { MIME, MimeBundle, PlotlyFigure, VEGA_LITE_SCHEMA, VegaLiteSpec, escapeHtml, titleText } from './types';
import { resolvePackage } from './require-package';
import { renderSvg, svgImgTag } from './vega';

/** Marks the div of a Plotly output; `show` looks for it when it writes standalone HTML files. */
export const PLOTLY_MARKER = 'data-fmnist-plotly';

export interface PlotlyOptions {
  /**
   * 'auto' (default): embed plotly.js in the first Plotly output of this process only;
   * 'always': in this output whatever came before; 'never': never (the static image shows unless
   * the page already has `window.Plotly`).
   */
  includePlotlyJs?: 'auto' | 'always' | 'never';
  /** The static image's chart (default: a Vega-Lite equivalent of the figure's scatter and bar traces). */
  fallback?: VegaLiteSpec;
  /** Text for `text/plain` (default: the layout's title). */
  text?: string;
  /** plotly.js config merged over the defaults {responsive: true, displaylogo: false}. */
  config?: Record<string, unknown>;
}

let libraryEmbedded = false;
let librarySource: string | null = null;

/** Forgets that plotly.js was embedded: the next 'auto' output embeds it again. */
export function resetPlotlyEmbedding(): void {
  libraryEmbedded = false;
}

/** Path of the plotly.js bundle in node_modules. */
export function plotlyLibraryPath(): string {
  return resolvePackage('plotly.js-dist-min');
}

/** plotly.js-dist-min's version. */
export function plotlyVersion(): string {
  const pkg = path.join(path.dirname(plotlyLibraryPath()), 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** The plotly.js source, safe to put between <script> tags. Read once, then cached. */
function plotlySource(): string {
  if (librarySource === null) {
    librarySource = fs
      .readFileSync(plotlyLibraryPath(), 'utf8')
      .replace(/<\/(script)/gi, '<\\/$1')
      .replace(/<!--/g, '<\\!--');
  }
  return librarySource;
}

/** The <script> that defines window.Plotly unless the page has it already. */
export function plotlyLibraryScript(): string {
  return `<script type="text/javascript">/* plotly.js-dist-min ${plotlyVersion()}, MIT licence */\n` +
    `if (!window.Plotly) {\n${plotlySource()}\n}\n</script>`;
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

let divCounter = 0;

/** The bundle for a Plotly figure: see the module's comment for what it embeds. */
export async function plotlyBundle(figure: PlotlyFigure, options: PlotlyOptions = {}): Promise<MimeBundle> {
  const layout = figure.layout ?? {};
  const text = options.text ?? (titleText(layout.title) || 'Plotly chart');
  const config = { responsive: true, displaylogo: false, ...(figure.config ?? {}), ...(options.config ?? {}) };
  const payload = { data: figure.data, layout, config };

  const spec = options.fallback ?? plotlyToVegaLite(figure);
  const svg = spec ? await renderSvg(spec) : placeholderSvg(text);

  const mode = options.includePlotlyJs ?? 'auto';
  const embed = mode === 'always' || (mode === 'auto' && !libraryEmbedded);
  if (embed) libraryEmbedded = true;

  const id = `fmnist-plotly-${process.pid.toString(36)}-${Date.now().toString(36)}-${(divCounter++).toString(36)}`;
  const html =
    (embed ? plotlyLibraryScript() + '\n' : '') +
    `<div id="${id}" ${PLOTLY_MARKER}="1" style="max-width:100%">${svgImgTag(svg, text)}</div>\n` +
    `<script type="text/javascript">(function () {\n` +
    `  var id = ${scriptJson(id)}, fig = ${scriptJson(payload)};\n` +
    `  var s = document.currentScript, el = s && s.previousElementSibling;\n` +
    `  if (!el || el.id !== id) el = document.getElementById(id);\n` +
    `  if (!el) return;\n` +
    `  var fallback = el.innerHTML, tries = 0;\n` +
    `  function restore() { el.innerHTML = fallback; }\n` +
    `  function draw() {\n` +
    `    if (!window.Plotly) { if (++tries < 50) setTimeout(draw, 200); return; }\n` +
    `    try {\n` +
    `      el.innerHTML = '';\n` +
    `      var p = window.Plotly.newPlot(el, fig.data, fig.layout, fig.config);\n` +
    `      if (p && p.catch) p.catch(restore);\n` +
    `    } catch (e) { restore(); }\n` +
    `  }\n` +
    `  draw();\n` +
    `})();</script>`;

  return { [MIME.plotly]: payload, [MIME.html]: html, [MIME.plain]: text };
}

/** A plain SVG saying the chart needs JavaScript, for figures with no trace the converter knows. */
function placeholderSvg(title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="60" viewBox="0 0 480 60">` +
    `<rect width="480" height="60" fill="white" stroke="#ccc"/>` +
    `<text x="12" y="26" font-family="sans-serif" font-size="13">${escapeHtml(title)}</text>` +
    `<text x="12" y="46" font-family="sans-serif" font-size="11" fill="#666">interactive Plotly chart: needs JavaScript</text></svg>`;
}

const DASHES: Record<string, number[]> = { dash: [6, 4], dot: [2, 3], dashdot: [6, 3, 2, 3], longdash: [10, 4] };

function axisTitle(axis: unknown): string {
  return axis && typeof axis === 'object' ? titleText((axis as { title?: unknown }).title) : '';
}

/**
 * A Vega-Lite equivalent of a Plotly figure's scatter (lines and/or markers) and bar traces, for the
 * static image; other trace types are left out. Null when no trace can be drawn.
 */
export function plotlyToVegaLite(figure: PlotlyFigure, width = 480, height = 300): VegaLiteSpec | null {
  const layout = figure.layout ?? {};
  const layers: Record<string, unknown>[] = [];
  const names: string[] = [];
  let categoricalX = false;
  let hasBar = false;
  figure.data.forEach((trace, i) => {
    const type = (trace.type as string | undefined) ?? 'scatter';
    const xs = trace.x as unknown[] | undefined;
    const ys = trace.y as unknown[] | undefined;
    if (!Array.isArray(ys) || !['scatter', 'scattergl', 'bar'].includes(type)) return;
    const name = typeof trace.name === 'string' ? trace.name : `trace ${i}`;
    names.push(name);
    const values = ys.map((y, j) => ({ x: xs ? xs[j] : j, y, trace: name }));
    if (values.some((v) => typeof v.x !== 'number')) categoricalX = true;
    const mode = (trace.mode as string | undefined) ?? (ys.length > 20 ? 'lines' : 'lines+markers');
    const line = (trace.line ?? {}) as { dash?: string };
    let mark: Record<string, unknown>;
    if (type === 'bar') {
      mark = { type: 'bar' };
      hasBar = true;
    }
    else if (!mode.includes('lines')) mark = { type: 'point', filled: true };
    else {
      mark = { type: 'line', point: mode.includes('markers') };
      if (line.dash && DASHES[line.dash]) mark.strokeDash = DASHES[line.dash];
    }
    layers.push({ data: { values }, mark });
  });
  if (layers.length === 0) return null;
  const xaxis = (layout.xaxis ?? {}) as { type?: string };
  const yaxis = (layout.yaxis ?? {}) as { type?: string };
  const xTitle = axisTitle(layout.xaxis) || 'x';
  const yTitle = axisTitle(layout.yaxis) || 'y';
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    width,
    height,
    encoding: {
      x: {
        field: 'x',
        type: categoricalX ? 'ordinal' : 'quantitative',
        title: xTitle,
        ...(categoricalX ? { sort: null } : {}),
        ...(xaxis.type === 'log' ? { scale: { type: 'log' } } : {}),
      },
      y: { field: 'y', type: 'quantitative', title: yTitle, scale: { zero: hasBar, ...(yaxis.type === 'log' ? { type: 'log' } : {}) } },
      color: { field: 'trace', type: 'nominal', title: titleText((layout.legend as { title?: unknown } | undefined)?.title) || null, scale: { domain: names }, legend: names.length > 1 ? { orient: 'bottom', direction: 'vertical', labelLimit: 0 } : null },
      tooltip: [
        { field: 'trace', title: 'Series' },
        { field: 'x', title: xTitle },
        { field: 'y', title: yTitle },
      ],
    },
    layer: layers,
  };
  const title = titleText(layout.title);
  if (title) spec.title = title;
  return spec;
}
