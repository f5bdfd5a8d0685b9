/**
 * Notebook 00 in a real browser, as a learner runs it: Debian's classic Jupyter Notebook serves a
 * copy of it (smoke setting), headless Chromium (playwright-core) opens it, runs every cell through
 * the menu (Cell > Run All) and checks that the cells ran without errors and the charts were drawn.
 * The page is saved as reports/browser-00.png. The server, its kernel and the browser are always
 * stopped; the last test checks that no process of theirs is left.
 *
 * Needs Debian's jupyter-notebook and chromium, the npm package playwright-core and the tslab kernel
 * registered for this checkout (./setup.sh does all of it): without them the tests fail and say so.
 */
import assert from 'node:assert/strict';
import { freePort } from '../lib/ddp/launch';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { CHROMIUM, JUPYTER, NOTEBOOKS_DIR, REPORTS_DIR, SETTING_ENV, assertPrerequisites, jupyterEnv, trustNotebooks } from '../scripts/jupyter';

const NOTEBOOK = '00-data-parallel-in-one-picture.ipynb';
const SCREENSHOT = path.join(REPORTS_DIR, 'browser-00.png');
/** Chromium's flags for this machine (no GPU, no network, no sandbox as root, nothing in the background). */
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];
const RUN_ALL_TIMEOUT_MS = 300_000;

/** What the checks use of the page's globals (the project compiles without the DOM library). */
interface PageGlobals {
  Jupyter?: {
    notebook?: {
      trusted: boolean;
      kernel?: { is_connected?: () => boolean };
      get_cells(): { cell_type: string; input_prompt_number?: number | string | null }[];
    };
  };
  document: { getElementById(id: string): { style: Record<string, string> } | null; body: { style: Record<string, string> } };
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids of live processes whose command line contains `marker`, and all their descendants. */
function processesOf(marker: string): number[] {
  const procs: { pid: number; ppid: number; cmd: string }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // a zombie is gone already
      procs.push({ pid: Number(entry), ppid, cmd });
    } catch {
      // the process ended meanwhile
    }
  }
  const found = new Set(procs.filter((p) => p.cmd.includes(marker)).map((p) => p.pid));
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) if (found.has(p.ppid) && !found.has(p.pid)) { found.add(p.pid); grew = true; }
  }
  return [...found];
}

describe('notebook 00 in a browser (classic Jupyter Notebook, headless Chromium)', () => {
  // Everything this test starts is marked by this folder: the notebooks' copy, Jupyter's runtime
  // files (kernel connection files are named on the kernels' command lines) and Chromium's profile.
  let work = '';
  let server: ChildProcess | null = null;
  let serverLog = '';
  let context: BrowserContext | null = null;
  let page: Page | null = null;
  let base = '';
  const token = randomBytes(16).toString('hex');

  async function stopAll(): Promise<void> {
    if (context) {
      await context.close().catch(() => undefined);
      context = null;
    }
    if (server && server.exitCode == null && server.signalCode == null) {
      // Ask the server to shut down its kernels and itself, then insist.
      await fetch(`${base}/api/shutdown?token=${token}`, { method: 'POST' }).catch(() => undefined);
      for (let i = 0; i < 100 && server.exitCode == null && server.signalCode == null; i++) await sleep(100);
      if (server.exitCode == null && server.signalCode == null && server.pid) {
        try { process.kill(-server.pid, 'SIGTERM'); } catch { /* gone */ }
        for (let i = 0; i < 50 && server.exitCode == null && server.signalCode == null; i++) await sleep(100);
      }
    }
    if (work) {
      for (const pid of processesOf(work)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  }

  before(async () => {
    assertPrerequisites({ browser: true });
    fs.mkdirSync(REPORTS_DIR, { recursive: true });
    // Inside the repository (reports/ is ignored), so that the notebook finds the project above it.
    work = fs.mkdtempSync(path.join(REPORTS_DIR, 'browser-test-'));
    const notebooks = path.join(work, 'notebooks');
    fs.mkdirSync(notebooks);
    fs.symlinkSync(path.relative(notebooks, path.join(NOTEBOOKS_DIR, '..', 'lib')), path.join(notebooks, 'lib'));
    fs.copyFileSync(path.join(NOTEBOOKS_DIR, NOTEBOOK), path.join(notebooks, NOTEBOOK));
    const env = jupyterEnv({
      [SETTING_ENV]: 'smoke',
      JUPYTER_CONFIG_DIR: path.join(work, 'config'),
      JUPYTER_RUNTIME_DIR: path.join(work, 'runtime'),
    });
    // Signed, so that the notebook opens as trusted (its HTML and JavaScript outputs shown).
    trustNotebooks([path.join(notebooks, NOTEBOOK)], env);

    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const args = [
      'notebook', '--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0', `--notebook-dir=${notebooks}`,
      `--NotebookApp.token=${token}`, '--NotebookApp.password=',
      ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
    ];
    server = spawn(JUPYTER, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.on('data', (d: Buffer) => { serverLog += d.toString(); });
    server.stderr?.on('data', (d: Buffer) => { serverLog += d.toString(); });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (server.exitCode != null) throw new Error(`jupyter notebook exited (code ${server.exitCode}):\n${serverLog}`);
      const ok = await fetch(`${base}/api/status?token=${token}`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`jupyter notebook did not answer within 60 s:\n${serverLog}`);
      await sleep(250);
    }

    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(path.join(work, 'chromium-profile'), {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, { timeout: 120_000 });

  after(async () => {
    await stopAll();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('runs every cell through Cell > Run All, without errors, and draws the charts', { timeout: RUN_ALL_TIMEOUT_MS + 120_000 }, async () => {
    assert.ok(page, 'no browser page');
    const p = page;
    await p.goto(`${base}/notebooks/${NOTEBOOK}?token=${token}`);
    await p.waitForFunction(() => (globalThis as unknown as PageGlobals).Jupyter?.notebook?.kernel?.is_connected?.() === true, undefined, { timeout: 60_000 });
    const trusted = await p.evaluate(() => (globalThis as unknown as PageGlobals).Jupyter?.notebook?.trusted);
    assert.equal(trusted, true, 'the notebook opened as not trusted');

    // Through the menu, as a person would.
    await p.click('#celllink');
    await p.click('#run_all_cells > a');

    type Prompt = { index: number; prompt: number | string | null };
    const prompts = () => p.evaluate(() => {
      const nb = (globalThis as unknown as PageGlobals).Jupyter?.notebook;
      return (nb?.get_cells() ?? []).map((c, index) => ({ index, type: c.cell_type, prompt: c.input_prompt_number ?? null }))
        .filter((c) => c.type === 'code').map(({ index, prompt }) => ({ index, prompt }));
    });
    // Queued cells show In [*]; a cell that ran shows its number; one skipped after an error, In [ ].
    const deadline = Date.now() + RUN_ALL_TIMEOUT_MS;
    let state: Prompt[] = await prompts();
    await sleep(1000);
    for (;;) {
      state = await prompts();
      const busy = state.some((c) => c.prompt === '*');
      const idle = await p.locator('#kernel_indicator_icon.kernel_idle_icon').count() > 0;
      const dead = await p.locator('#kernel_indicator_icon.kernel_dead_icon, #kernel_indicator_icon.kernel_disconnected_icon').count() > 0;
      if ((!busy && idle) || dead || Date.now() > deadline) break;
      await sleep(1000);
    }

    // The page as it is, whatever comes next: the notebook scrolls inside #site, so unroll it first.
    await p.evaluate(() => {
      const { document } = globalThis as unknown as PageGlobals;
      const site = document.getElementById('site');
      if (site) { site.style.height = 'auto'; site.style.overflow = 'visible'; }
      document.body.style.overflow = 'visible';
    });
    await p.screenshot({ path: SCREENSHOT, fullPage: true });

    const notRun = state.filter((c) => typeof c.prompt !== 'number');
    const stderr = await p.locator('.output_stderr').allInnerTexts();
    const errors = await p.locator('.output_error').allInnerTexts();
    const short = (t: string) => t.trim().split('\n').slice(0, 8).join('\n');
    assert.deepEqual(errors.map(short), [], 'error outputs');
    assert.deepEqual(stderr.filter((t) => /Error/.test(t)).map(short), [], 'errors written to stderr');
    assert.deepEqual(notRun, [], `code cells that did not run (In [*]: still running after ${RUN_ALL_TIMEOUT_MS / 1000} s; In [ ]: skipped after an error)`);

    // The Vega-Lite chart: an <img> of its SVG, loaded. The Plotly chart: drawn by plotly.js.
    const images = p.locator('.output_html img[src^="data:image/svg+xml"]');
    assert.ok(await images.count() >= 1, 'no chart image');
    const widths = await images.evaluateAll((imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
    assert.ok(widths.every((w) => w > 0), `chart images that did not load: ${widths.join(', ')}`);
    assert.ok(await p.locator('.output_html .js-plotly-plot .main-svg').count() >= 1, 'Plotly did not draw the loss chart');
    assert.ok(await p.locator('.output_html .js-plotly-plot .scatterlayer .trace').count() >= 3, 'the loss chart lacks its 3 runs');
    // The live progress views ended with their tables, and the comparison table is there.
    const html = (await p.locator('.output_html').allInnerTexts()).join('\n');
    assert.match(html, /A: 1 worker x 64/);
    assert.match(html, /B: 2 workers x 32/);
    assert.match(html, /A vs B: 1 x 64 vs 2 x 32/);
    assert.ok(fs.statSync(SCREENSHOT).size > 10_000, 'the screenshot is empty');
  });

  it('leaves no process behind: server, kernel, training workers and browser all stopped', async () => {
    await stopAll();
    await sleep(500);
    const left = work ? processesOf(work) : [];
    assert.deepEqual(left, [], `processes left: ${left.join(', ')}`);
    assert.ok(server == null || server.exitCode != null || server.signalCode != null, 'the notebook server still runs');
  });
});

