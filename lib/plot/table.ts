/** Tables for notebooks: one HTML table (inline styles only) with a plain-text twin. */
import { MIME, type MimeBundle, escapeHtml } from './types';

export interface TableColumn<T> {
  title: string;
  value: (row: T) => string | number;
  /** Right-aligned (numbers); default true for numbers. */
  numeric?: boolean;
}

/** A table of `rows` with these columns, an optional caption above it. */
export function tableBundle<T>(columns: TableColumn<T>[], rows: T[], caption?: string): MimeBundle {
  const cells = rows.map((row) => columns.map((c) => c.value(row)));
  const numeric = columns.map((c, j) => c.numeric ?? cells.every((r) => typeof r[j] === 'number'));
  const text = (v: string | number) => (typeof v === 'number' ? String(v) : v);
  const cell = 'padding:3px 10px;border-bottom:1px solid #ddd';
  const html = '<div style="font-family:sans-serif;font-size:13px">' +
    (caption ? `<div style="font-weight:bold;margin-bottom:4px">${escapeHtml(caption)}</div>` : '') +
    '<table style="border-collapse:collapse"><tr>' +
    columns.map((c, j) => `<th style="${cell};text-align:${numeric[j] ? 'right' : 'left'}">${escapeHtml(c.title)}</th>`).join('') + '</tr>' +
    cells.map((r) => '<tr>' + r.map((v, j) => `<td style="${cell};text-align:${numeric[j] ? 'right' : 'left'};font-variant-numeric:tabular-nums">${escapeHtml(text(v))}</td>`).join('') + '</tr>').join('') +
    '</table></div>';
  const plain = [caption ?? '', columns.map((c) => c.title).join(' | '), ...cells.map((r) => r.map(text).join(' | '))].filter((l) => l !== '').join('\n');
  return { [MIME.html]: html, [MIME.plain]: plain };
}
