/**
 * Shared types of `lib/plot`.
 *
 * A display is a MIME bundle: one object whose keys are MIME types and whose values are what the
 * frontend renders for that type. Frontends pick the type they like best:
 * - JupyterLab 4 (and Notebook 7) ranks the Plotly extension's `application/vnd.plotly.v1+json` (0)
 *   above `text/html` (50), Vega (57) and images (SVG 80, PNG 90).
 * - nbconvert's HTML export knows neither Vega nor Plotly: it uses `text/html`, else `image/svg+xml`
 *   (as a base64 <img>).
 * - A plain `node` process prints `text/plain`.
 */

/** e.g. {'text/html': string, 'application/vnd.vegalite.v5+json': object, 'text/plain': string}. */
export type MimeBundle = Record<string, unknown>;

export const MIME = {
  html: 'text/html',
  plain: 'text/plain',
  svg: 'image/svg+xml',
  vegaLite: 'application/vnd.vegalite.v5+json',
  plotly: 'application/vnd.plotly.v1+json',
} as const;

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/**
 * A Vega-Lite v5 specification, loosely typed on purpose: vega-lite's own `TopLevelSpec` is a deep
 * union that is hard to build step by step in strict TypeScript, and these modules must also
 * compile inside tslab (TypeScript 5.0) without pulling vega-lite's declarations in.
 */
export interface VegaLiteSpec {
  $schema?: string;
  title?: string | { text: string | string[]; [key: string]: unknown };
  [key: string]: unknown;
}

/** A Plotly figure: traces, layout and optional plotly.js config (the `application/vnd.plotly.v1+json` payload). */
export interface PlotlyFigure {
  data: Record<string, unknown>[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** The plain-text title of a Vega-Lite spec or a Plotly layout title, or '' when it has none. */
export function titleText(title: unknown): string {
  if (typeof title === 'string') return title;
  if (Array.isArray(title)) return title.map(String).join(' ');
  if (title && typeof title === 'object' && 'text' in title) return titleText((title as { text: unknown }).text);
  return '';
}

/** A bundle holding HTML and its plain-text stand-in. */
export function htmlBundle(html: string, text: string): MimeBundle {
  return { [MIME.html]: html, [MIME.plain]: text };
}
