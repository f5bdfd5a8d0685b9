/**
 * What the lesson tooling shares: where things are, the environment Jupyter runs in, checks that
 * the set-up is complete (with messages that say how to fix it), signing, and the check of an
 * executed notebook.
 *
 * The tslab kernel has gaps that make nbconvert's own verdict unreliable: its errors reach only the
 * cell's stderr (no `error` output), and after an error it answers the next requests with status
 * "abort", which nbconvert's --allow-errors takes as success. So an executed notebook is checked
 * here cell by cell.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository: this file runs from dist/scripts/. */
export const ROOT = path.resolve(__dirname, '..', '..');
export const NOTEBOOKS_DIR = path.join(ROOT, 'notebooks');
export const REPORTS_DIR = path.join(ROOT, 'reports');
/** Where ./setup.sh registers the tslab kernel for this checkout (`tslab install --prefix`). */
export const KERNELS_PATH = path.join(ROOT, '.jupyter', 'share', 'jupyter');
export const KERNEL_NAME = 'tslab';
/** What the kernel runs: tslab with a fix for its output socket (scripts/tslab-zeromq.cjs). */
export const KERNEL_LAUNCHER = path.join(ROOT, 'scripts', 'tslab-kernel.sh');
/** The virtual environment ./setup.sh makes inside the checkout (requirements.txt): Jupyter's Python. */
export const VENV = path.join(ROOT, '.venv');
export const PYTHON = path.join(VENV, 'bin', 'python');
export const JUPYTER = path.join(VENV, 'bin', 'jupyter');
export const CHROMIUM = '/usr/bin/chromium';

export const LESSON_SETTINGS = ['smoke', 'quick', 'full'] as const;
export type LessonSetting = (typeof LESSON_SETTINGS)[number];
/** The notebooks read their setting from this variable (quick when unset). */
export const SETTING_ENV = 'FASHION_MNIST_LESSON_SETTING';

/** The environment every jupyter command runs in (what scripts/jupyter-env.sh sets up). */
export function jupyterEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const inherited = process.env.JUPYTER_PATH;
  const bin = path.join(VENV, 'bin');
  return {
    ...process.env,
    VIRTUAL_ENV: VENV,
    PATH: process.env.PATH ? `${bin}${path.delimiter}${process.env.PATH}` : bin,
    JUPYTER_PATH: inherited ? `${KERNELS_PATH}${path.delimiter}${inherited}` : KERNELS_PATH,
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
    ...extra,
  };
}

const SETUP_HINT = 'run ./setup.sh --no-run (it makes .venv/ from requirements.txt, installs the Debian packages and registers the kernel)';

/**
 * What is missing for running notebooks (and, with `browser`, for the browser test), as
 * sentences; empty when all is there.
 */
export function missingPrerequisites(options: { browser?: boolean } = {}): string[] {
  const missing: string[] = [];
  if (!fs.existsSync(PYTHON)) missing.push(`${path.relative(ROOT, PYTHON)} is missing (the virtual environment of requirements.txt)`);
  else if (!fs.existsSync(JUPYTER)) missing.push(`${path.relative(ROOT, JUPYTER)} is missing (jupyter_core, from requirements.txt)`);
  if (fs.existsSync(PYTHON)) {
    const modules = ['nbconvert', 'nbclient', 'nbformat', 'jupyter_client', ...(options.browser ? ['jupyterlab', 'notebook'] : [])];
    const probe = spawnSync(PYTHON, ['-c', `import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m) is None))`, ...modules], {
      encoding: 'utf8', env: jupyterEnv(),
    });
    const absent = (probe.stdout ?? '').trim();
    if (probe.status !== 0) missing.push(`${PYTHON} could not check its modules: ${(probe.stderr ?? '').trim()}`);
    else if (absent) missing.push(`Python modules missing from ${PYTHON}: ${absent}`);
  }
  const kernelJson = path.join(KERNELS_PATH, 'kernels', KERNEL_NAME, 'kernel.json');
  if (!fs.existsSync(kernelJson)) {
    missing.push(`the ${KERNEL_NAME} kernel is not registered for this checkout (${path.relative(ROOT, kernelJson)})`);
  } else {
    const argv = (JSON.parse(fs.readFileSync(kernelJson, 'utf8')) as { argv?: string[] }).argv ?? [];
    if (!argv[0] || !fs.existsSync(argv[0])) {
      missing.push(`the registered ${KERNEL_NAME} kernel points to ${argv[0] ?? '(nothing)'}, which does not exist (a moved checkout?)`);
    } else if (path.resolve(argv[0]) !== KERNEL_LAUNCHER) {
      missing.push(`the registered ${KERNEL_NAME} kernel runs ${argv[0]}, not ${path.relative(ROOT, KERNEL_LAUNCHER)} (registered by an older ./setup.sh; that kernel loses output after about 500 messages)`);
    }
  }
  const lib = path.join(NOTEBOOKS_DIR, 'lib');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'launch', 'worker-main.js'))) {
    missing.push('dist/ is not built (the notebooks import the compiled dist/lib, and their workers run it): run npm run build');
  } else if (!fs.existsSync(lib) || fs.realpathSync(lib) !== fs.realpathSync(path.join(ROOT, 'dist', 'lib'))) {
    missing.push('notebooks/lib does not lead to ../dist/lib (the notebooks import ./lib/...): ./setup.sh makes it again');
  }
  if (options.browser) {
    if (!fs.existsSync(CHROMIUM)) missing.push(`${CHROMIUM} is missing (Debian package chromium)`);
    try {
      require.resolve('playwright-core');
    } catch {
      missing.push('the npm package playwright-core is missing (a devDependency: npm ci)');
    }
  }
  return missing;
}

/** Throws one error naming everything that is missing, and how to get it. */
export function assertPrerequisites(options: { browser?: boolean } = {}): void {
  const missing = missingPrerequisites(options);
  if (missing.length > 0) throw new Error(`the notebook tooling is not set up:\n  - ${missing.join('\n  - ')}\nTo fix: ${SETUP_HINT}.`);
}

/** Notebook files of notebooks/, in lesson order. */
export function lessonNotebooks(): string[] {
  return fs.readdirSync(NOTEBOOKS_DIR).filter((f) => f.endsWith('.ipynb')).sort().map((f) => path.join(NOTEBOOKS_DIR, f));
}

// ---- the executed notebook ----

export interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
}
export interface NotebookCell {
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: NotebookOutput[];
  /** `execution`: nbclient's timestamps; `lessons`: set by scripts/run_notebook.py on the cell that failed. */
  metadata?: { execution?: Record<string, string>; lessons?: { status?: string } } & Record<string, unknown>;
}
export interface Notebook {
  cells: NotebookCell[];
  metadata: Record<string, unknown>;
}

export const text = (value: string | string[] | undefined): string => (Array.isArray(value) ? value.join('') : value ?? '');

export function readNotebook(file: string): Notebook {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook;
}

export function firstLine(cell: NotebookCell): string {
  return text(cell.source).split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 100) ?? '';
}

/** Code cells that hold code (nbconvert skips empty ones). */
export function codeCells(nb: Notebook): { cell: NotebookCell; index: number }[] {
  return nb.cells.map((cell, index) => ({ cell, index })).filter(({ cell }) => cell.cell_type === 'code' && text(cell.source).trim() !== '');
}

/**
 * What went wrong in an executed notebook, one sentence per problem, naming the cell: a cell that
 * failed (marked by scripts/run_notebook.py), a code cell that was not executed (no
 * execute_reply recorded, no execution count), an error output, or stderr output that mentions an
 * Error (tslab reports failures only there).
 */
export function notebookProblems(nb: Notebook): string[] {
  const problems: string[] = [];
  for (const { cell, index } of codeCells(nb)) {
    const where = `cell ${index} (${firstLine(cell)})`;
    if (cell.metadata?.lessons?.status === 'error') {
      const stderr = (cell.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stderr').map((o) => text(o.text)).join('').trim();
      problems.push(`${where} failed:\n    ${(stderr || '(no message)').split('\n').slice(0, 12).join('\n    ')}`);
      continue;
    }
    const executed = cell.metadata?.execution?.['shell.execute_reply'] !== undefined;
    if (!executed || cell.execution_count == null) {
      problems.push(`${where} was not executed`);
      continue;
    }
    for (const output of cell.outputs ?? []) {
      if (output.output_type === 'error') {
        problems.push(`${where} raised ${output.ename ?? 'an error'}: ${output.evalue ?? ''}`);
      } else if (output.output_type === 'stream' && output.name === 'stderr' && /Error/.test(text(output.text))) {
        const lines = text(output.text).trim().split('\n');
        problems.push(`${where} wrote an error to stderr:\n    ${lines.slice(0, 12).join('\n    ')}`);
      }
    }
  }
  return problems;
}

export const PLOT_MIME = {
  html: 'text/html',
  svg: 'image/svg+xml',
  vegaLite: 'application/vnd.vegalite.v5+json',
  plotly: 'application/vnd.plotly.v1+json',
} as const;

export interface PlotOutput {
  /** The cell's index. */
  index: number;
  /** The chart's data: a Vega-Lite spec or a Plotly figure (null: neither). */
  data: 'vega-lite' | 'plotly' | null;
  /** It carries the static chart: an image/svg+xml, or a text/html holding an <img> with a data:image/svg+xml URL. */
  hasImage: boolean;
}

/**
 * The chart outputs of a notebook: each output that carries Vega-Lite or Plotly data or a static
 * chart image. A complete chart output carries both.
 */
export function plotOutputs(nb: Notebook): PlotOutput[] {
  const plots: PlotOutput[] = [];
  nb.cells.forEach((cell, index) => {
    for (const output of cell.outputs ?? []) {
      const bundle = output.data;
      if (!bundle) continue;
      const html = bundle[PLOT_MIME.html];
      const svg = bundle[PLOT_MIME.svg];
      const hasImage = ((typeof svg === 'string' || Array.isArray(svg)) && text(svg as string | string[]).includes('<svg')) ||
        ((typeof html === 'string' || Array.isArray(html)) && text(html as string | string[]).includes('data:image/svg+xml;base64,'));
      const data = bundle[PLOT_MIME.plotly] !== undefined ? 'plotly' : bundle[PLOT_MIME.vegaLite] !== undefined ? 'vega-lite' : null;
      if (data !== null || hasImage) plots.push({ index, data, hasImage });
    }
  });
  return plots;
}
