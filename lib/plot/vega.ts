/**
 * Vega-Lite specs rendered headless to SVG, and the MIME bundle that shows them everywhere.
 *
 * vega 5.33 and vega-lite 5.23 are CommonJS (their 6.x releases are ESM-only with top-level await
 * and cannot be `require`d, nor imported by tslab cells). They are loaded lazily, on the first
 * render, so importing `lib/plot` stays cheap (about 0.2 s is spent on the first chart instead).
 */
import { requirePackage } from './require-package';
import { MIME, MimeBundle, VEGA_LITE_SCHEMA, VegaLiteSpec, escapeHtml, titleText } from './types';

/** The part of vega's API used here. */
interface VegaModule {
  parse(spec: unknown, config?: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => {
    toSVG(scaleFactor?: number): Promise<string>;
    finalize(): void;
  };
}
/** The part of vega-lite's API used here. */
interface VegaLiteModule {
  compile(spec: unknown, options?: { logger?: VegaLogger }): { spec: unknown };
}
/** vega-util's logger interface, as vega-lite's compile takes it. */
interface VegaLogger {
  level(level?: number): number | VegaLogger;
  error(...args: unknown[]): VegaLogger;
  warn(...args: unknown[]): VegaLogger;
  info(...args: unknown[]): VegaLogger;
  debug(...args: unknown[]): VegaLogger;
}

let vegaModule: VegaModule | null = null;
let vegaLiteModule: VegaLiteModule | null = null;

function loadVega(): { vega: VegaModule; vl: VegaLiteModule } {
  if (!vegaModule) vegaModule = requirePackage<VegaModule>('vega');
  if (!vegaLiteModule) vegaLiteModule = requirePackage<VegaLiteModule>('vega-lite');
  return { vega: vegaModule, vl: vegaLiteModule };
}

/** A logger that keeps vega-lite's warnings instead of printing them, and throws its errors. */
function collectingLogger(warnings: string[]): VegaLogger {
  let current = 2; // vega-util's Warn level
  const logger: VegaLogger = {
    level(level?: number) {
      if (level === undefined) return current;
      current = level;
      return logger;
    },
    error(...args: unknown[]): VegaLogger {
      throw new Error(args.map(String).join(' '));
    },
    warn(...args: unknown[]) {
      warnings.push(args.map(String).join(' '));
      return logger;
    },
    info: () => logger,
    debug: () => logger,
  };
  return logger;
}

export interface VegaLiteOptions {
  /**
   * Put the static image (`image/svg+xml`) in the bundle. Default true: without it nbconvert's HTML
   * export, which knows no Vega, shows nothing.
   */
  image?: boolean;
  /** Text for `text/plain` (default: the chart's title). */
  text?: string;
  /** Scale factor of the SVG's width and height (default 1). */
  scale?: number;
}

/** Adds `$schema` (v5) and a white background when the spec has none: charts stay readable on dark themes. */
export function withDefaults(spec: VegaLiteSpec): VegaLiteSpec {
  const out: VegaLiteSpec = { $schema: VEGA_LITE_SCHEMA, ...spec };
  if (out.background === undefined) out.background = 'white';
  return out;
}

/** Compiles a Vega-Lite spec to a Vega spec; throws on errors. Warnings are returned, not printed. */
export function compileVegaLite(spec: VegaLiteSpec): { vega: unknown; warnings: string[] } {
  const { vl } = loadVega();
  const warnings: string[] = [];
  const compiled = vl.compile(withDefaults(spec), { logger: collectingLogger(warnings) });
  return { vega: compiled.spec, warnings };
}

/** Renders a Vega-Lite spec to an SVG document without a browser (vega's 'none' renderer). */
export async function renderSvg(spec: VegaLiteSpec, scale = 1): Promise<string> {
  const { vega } = loadVega();
  const compiled = compileVegaLite(spec).vega;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG(scale);
  } finally {
    view.finalize();
  }
}

/** `data:image/svg+xml;base64,...` for an SVG document. */
export function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}

/** An <img> holding the SVG as a data URL: survives nbconvert's HTML export, unlike inline SVG. */
export function svgImgTag(svg: string, alt: string): string {
  return `<img src="${svgDataUrl(svg)}" alt="${escapeHtml(alt)}" style="max-width:100%;height:auto">`;
}

/**
 * The bundle for a Vega-Lite chart:
 * - `application/vnd.vegalite.v5+json`: the spec as a JSON object ($schema v5, data inline), drawn
 *   interactively by JupyterLab's own Vega renderer (it ranks Vega, 57, above images, 80-90, and
 *   would rank text/html, 50, above both: so there is no text/html), Notebook 7 and VS Code;
 * - `image/svg+xml`: the same chart rendered here, headless, which nbconvert 7's HTML export writes as
 *   an <img> with a base64 data URL (the report's image);
 * - `text/plain`: the title.
 */
export async function vegaLiteBundle(spec: VegaLiteSpec, options: VegaLiteOptions = {}): Promise<MimeBundle> {
  const full = withDefaults(spec);
  const text = options.text ?? (titleText(full.title) || 'Vega-Lite chart');
  const bundle: MimeBundle = { [MIME.vegaLite]: full };
  if (options.image !== false) bundle[MIME.svg] = await renderSvg(full, options.scale ?? 1);
  bundle[MIME.plain] = text;
  return bundle;
}

/** A bundle's static image: its image/svg+xml, else the SVG of the first <img> in its text/html; or null. */
export function svgFromBundle(bundle: MimeBundle): string | null {
  const svg = bundle[MIME.svg];
  if (typeof svg === 'string') return svg;
  const html = bundle[MIME.html];
  if (typeof html !== 'string') return null;
  const match = /data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)/.exec(html);
  return match ? Buffer.from(match[1], 'base64').toString('utf8') : null;
}
