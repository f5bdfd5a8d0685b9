/**
 * Showing bundles: in the tslab Jupyter kernel as one display_data message with every MIME type;
 * in a plain `node` process as text, plus files when FASHION_MNIST_PLOT_DIR names a folder.
 *
 * tslab's public `display` sends one MIME type per message. Its internal module
 * `tslab/dist/jupyter` exports `lastWriteDisplayData`: null until the kernel runs a cell, then the
 * function that sends display_data (or update_display_data) for the cell being executed. It is read
 * here from `require.cache`, where the kernel that runs this code has loaded it: nothing is
 * required, so plain node never loads tslab (and its TypeScript), and a tslab installed elsewhere
 * than this project's node_modules is found too.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { MIME, MimeBundle, escapeHtml } from './types';
import { svgFromBundle } from './vega';
import { PLOTLY_MARKER, plotlyLibraryPath } from './plotly';

/** The content of a Jupyter display_data message. */
export interface DisplayData {
  data: MimeBundle;
  metadata: Record<string, unknown>;
  transient: { display_id?: string };
}
export type WriteDisplayData = (data: DisplayData, update: boolean) => void;

/** Environment variable naming the folder where `show` writes files outside the kernel. */
export const PLOT_DIR_ENV = 'FASHION_MNIST_PLOT_DIR';

const TSLAB_JUPYTER = /[\\/]tslab[\\/]dist[\\/]jupyter\.js$/;

/** tslab's current display writer when this code runs inside a tslab kernel, else null. */
export function kernelWriter(): WriteDisplayData | null {
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!TSLAB_JUPYTER.test(file)) continue;
    const write = (mod?.exports as { lastWriteDisplayData?: unknown } | undefined)?.lastWriteDisplayData;
    if (typeof write === 'function') return write as WriteDisplayData;
  }
  return null;
}

/** True inside a tslab kernel that is running (or has run) a cell. */
export function inKernel(): boolean {
  return kernelWriter() !== null;
}

export interface ShowOptions {
  /** Base name of the files written outside the kernel (default: from the text/plain). */
  name?: string;
  /** Folder for those files (default: $FASHION_MNIST_PLOT_DIR; none: no files). */
  dir?: string;
  /** Jupyter display metadata (e.g. {'application/vnd.vegalite.v5+json': {embed_options: ...}}). */
  metadata?: Record<string, unknown>;
}

let fileCounter = 0;

function slug(text: string): string {
  const s = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48).replace(/-+$/, '');
  return s || 'plot';
}

function plainText(bundle: MimeBundle): string {
  const text = bundle[MIME.plain];
  if (typeof text === 'string') return text;
  const html = bundle[MIME.html];
  return typeof html === 'string' ? htmlToText(html) : '';
}

/** A rough plain-text reading of HTML, for console output. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, '')
    .replace(/<\/(td|th)>/gi, ' ')
    .replace(/<(br|\/tr|\/p|\/div|\/h\d)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/[ \t]+/g, ' ')
    .replace(/ *\n[\s]*/g, '\n')
    .trim();
}

/** A standalone HTML page around a bundle's text/html; Plotly outputs load plotly.min.js from beside it. */
function htmlPage(title: string, body: string, plotlyBeside: boolean): string {
  return '<!DOCTYPE html>\n<html><head><meta charset="utf-8">' +
    `<title>${escapeHtml(title)}</title>` +
    (plotlyBeside ? '<script src="plotly.min.js"></script>' : '') +
    `</head>\n<body style="font-family:sans-serif">\n${body}\n</body></html>\n`;
}

/**
 * Writes a bundle's files: `<NNN>-<name>.html` (a page around its text/html), `.svg` (the static
 * image), `.vl.json` (the Vega-Lite spec) and `.plotly.json` (the Plotly figure), the ones it has;
 * plus `plotly.min.js` once per folder when a Plotly page needs it (the pages work offline).
 */
export function writeBundleFiles(bundle: MimeBundle, dir: string, name?: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const title = plainText(bundle).split('\n')[0] ?? '';
  const base = path.join(dir, `${String(++fileCounter).padStart(3, '0')}-${slug(name ?? title)}`);
  const files: string[] = [];
  const write = (file: string, content: string) => {
    fs.writeFileSync(file, content);
    files.push(file);
  };
  const html = bundle[MIME.html];
  if (typeof html === 'string') {
    const plotly = html.includes(PLOTLY_MARKER);
    if (plotly) {
      const lib = path.join(dir, 'plotly.min.js');
      const source = plotlyLibraryPath();
      if (!fs.existsSync(lib) || fs.statSync(lib).size !== fs.statSync(source).size) {
        fs.copyFileSync(source, lib);
        files.push(lib);
      }
    }
    write(`${base}.html`, htmlPage(title || 'plot', html, plotly));
  }
  const svg = svgFromBundle(bundle);
  if (svg) write(`${base}.svg`, svg);
  if (bundle[MIME.vegaLite] !== undefined) write(`${base}.vl.json`, JSON.stringify(bundle[MIME.vegaLite], null, 2) + '\n');
  if (bundle[MIME.plotly] !== undefined) write(`${base}.plotly.json`, JSON.stringify(bundle[MIME.plotly]) + '\n');
  return files;
}

/**
 * Display metadata for a bundle: JupyterLab's Vega renderer draws SVG (vega-embed's default is a
 * canvas), so that charts print sharp, their text can be selected and their marks are elements.
 */
export function displayMetadata(bundle: MimeBundle, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  if (bundle[MIME.vegaLite] === undefined || metadata[MIME.vegaLite] !== undefined) return metadata;
  return { ...metadata, [MIME.vegaLite]: { embed_options: { renderer: 'svg' } } };
}

/**
 * Shows a bundle. In the tslab kernel: one display_data holding every MIME type of the bundle.
 * Elsewhere: prints its text/plain (or a text reading of its HTML) and, when a folder is given
 * (options.dir or $FASHION_MNIST_PLOT_DIR), writes its files there and prints their paths.
 * Returns nothing, so a notebook cell ending in `show(...)` prints nothing more.
 */
export function show(bundle: MimeBundle | string, options: ShowOptions = {}): void {
  const b: MimeBundle = typeof bundle === 'string' ? { [MIME.html]: bundle, [MIME.plain]: htmlToText(bundle) } : bundle;
  const write = kernelWriter();
  if (write) {
    write({ data: b, metadata: displayMetadata(b, options.metadata), transient: {} }, false);
    return;
  }
  const text = plainText(b);
  if (text) console.log(text);
  const dir = options.dir ?? process.env[PLOT_DIR_ENV];
  const files = dir ? writeBundleFiles(b, dir, options.name) : [];
  if (files.length > 0) console.log(`  wrote ${files.join(', ')}`);
}

export interface LiveDisplay {
  /** Replaces the displayed content (HTML is shown as HTML in the kernel, as text in a terminal). */
  update(content: MimeBundle | string): void;
  /** Shows the last content (or `final`) at once and ignores later updates. */
  close(final?: MimeBundle | string): void;
}

export interface LiveDisplayOptions {
  /** Least time between two updates sent; later ones wait, and only the latest is sent (default 250 ms in the kernel, 2000 ms in a terminal). */
  minIntervalMs?: number;
}

/**
 * One output that updates in place, for live training progress. In the kernel it sends a
 * display_data with a display_id, then update_display_data for it; in a terminal it prints a line
 * per update. Both are throttled: bursts of updates send only their latest content.
 */
export function liveDisplay(options: LiveDisplayOptions = {}): LiveDisplay {
  const kernel = inKernel();
  const minInterval = options.minIntervalMs ?? (kernel ? 250 : 2000);
  const id = randomBytes(8).toString('hex');
  let sent = false;
  let closed = false;
  let lastSent = -Infinity;
  let pending: MimeBundle | null = null;
  let timer: NodeJS.Timeout | null = null;

  const toBundle = (content: MimeBundle | string): MimeBundle =>
    typeof content === 'string' ? { [MIME.html]: content, [MIME.plain]: htmlToText(content) } : content;

  const send = () => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (!pending) return;
    const bundle = pending;
    pending = null;
    lastSent = Date.now();
    // Read the writer each time: tslab replaces it for every executed cell.
    const write = kernelWriter();
    if (write) {
      write({ data: bundle, metadata: displayMetadata(bundle), transient: { display_id: id } }, sent);
      sent = true;
    } else {
      const text = plainText(bundle).replace(/\s*\n\s*/g, ' | ');
      if (text) console.log(text);
    }
  };

  return {
    update(content) {
      if (closed) return;
      pending = toBundle(content);
      const wait = lastSent + minInterval - Date.now();
      if (wait <= 0) send();
      else if (!timer) {
        timer = setTimeout(send, wait);
        timer.unref();
      }
    },
    close(final) {
      if (closed) return;
      if (final !== undefined) pending = toBundle(final);
      send();
      closed = true;
    },
  };
}
