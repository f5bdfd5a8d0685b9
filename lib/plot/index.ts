/**
 * Plots and live views for the lesson notebooks: Vega-Lite charts rendered headless to SVG,
 * Plotly charts with a static fallback, tslab display helpers and training progress.
 *
 * Importing this module loads nothing heavy: vega and vega-lite are required on the first render,
 * plotly.js is read from disk on the first Plotly output, tslab is never required.
 */
export { MIME, VEGA_LITE_SCHEMA, escapeHtml, htmlBundle, titleText } from './types';
export type { MimeBundle, PlotlyFigure, VegaLiteSpec } from './types';
export { compileVegaLite, renderSvg, svgDataUrl, svgFromBundle, svgImgTag, vegaLiteBundle, withDefaults } from './vega';
export type { VegaLiteOptions } from './vega';
export { PLOTLY_MARKER, plotlyBundle, plotlyLibraryPath, plotlyLibraryScript, plotlyToVegaLite, plotlyVersion, resetPlotlyEmbedding } from './plotly';
export type { PlotlyOptions } from './plotly';
export { epochRows, lineChart, lineFigure, scheduleChart, spreadChart, stackedStepTime, stepTimeRow, throughputChart, timelineChart } from './charts';
export { tableBundle } from './table';
export type { TableColumn } from './table';
export type { AxisField, DashField, LineChartOptions, Row, ScheduleChartOptions, StepTimeRow, ThroughputChartOptions, ThroughputRow, TimelineBar } from './charts';
export { PLOT_DIR_ENV, htmlToText, inKernel, kernelWriter, liveDisplay, show, writeBundleFiles } from './display';
export type { DisplayData, LiveDisplay, LiveDisplayOptions, ShowOptions, WriteDisplayData } from './display';
export { progressBundle, progressFraction, progressHtml, progressText, trainingProgress, trainingTable, trainingTableBundle } from './progress';
export type { ProgressState } from './progress';
