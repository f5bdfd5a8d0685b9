/**
 * The lessons in JupyterLab 4, through its UI, the way learners use them: a JupyterLab server of this
 * checkout (.venv's) serves copies of lessons 00 and 02 in the smoke setting, headless Chromium
 * (playwright-core) runs them through the menus, edits and reruns the settings cell, interrupts a
 * two-worker run, exports a report, and meets a bad setting. Screenshots are kept in
 * reports/jupyterlab/. The server, its kernels, the training workers and the browser are always
 * stopped; the last test checks that none of their processes is left.
 *
 * Needs .venv (JupyterLab, Notebook 7, nbconvert), Debian's chromium, playwright-core and the tslab
 * kernel registered for this checkout (./setup.sh does all of it): without them the tests fail and
 * say so.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { NOTEBOOKS_DIR, REPORTS_DIR, SETTING_ENV, assertPrerequisites } from '../scripts/jupyter';
import { LabNotebook, LabServer, launchBrowser, sleep, waitFor, type CellView } from './support/jupyterlab';
import { processesOf } from './support/processes';

const LESSON_00 = '00-data-parallel-in-one-picture.ipynb';
const LESSON_02 = '02-momentum.ipynb';
const SHOTS = path.join(REPORTS_DIR, 'jupyterlab');
const RUN_ALL_MS = 300_000;
const STDERR = 'application/vnd.jupyter.stderr';

/** The settings cell's index in each lesson, and the line of its smoke setting. */
const SETTINGS_00 = { index: 2, smoke: 'smoke: { trainSubset: 512, valSubset: 200, epochs: 1 },' };
const SETTINGS_02 = {
  index: 1,
  smoke: "smoke: { model: 'cnn' as const, batchSize: 32, baseLr: 0.01, trainSubset: 320, valSubset: 200, epochs: 1 },",
};

/** A lesson cell's source as committed. */
function committedSource(file: string, index: number): string {
  const nb = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS_DIR, file), 'utf8')) as { cells: { source: string | string[] }[] };
  const source = nb.cells[index].source;
  return Array.isArray(source) ? source.join('') : source;
}

/** The committed settings cell with its smoke line replaced; fails if the line is not there. */
function editedSettings(file: string, settings: { index: number; smoke: string }, smoke: string): string {
  const source = committedSource(file, settings.index);
  assert.ok(source.includes(settings.smoke), `${file}: the settings cell no longer holds '${settings.smoke}'`);
  return source.replace(settings.smoke, smoke);
}

const errorsIn = (cells: CellView[]) => cells.flatMap((c) => c.outputs
  .filter((o) => o.mime === STDERR && /Error/.test(o.text) || /error/i.test(o.mime))
  .map((o) => `cell ${c.index}: ${o.text.trim().split('\n').slice(0, 6).join(' | ')}`));

const notRun = (cells: CellView[]) => cells.filter((c) => !/^\[\d+\]:$/.test(c.prompt)).map((c) => `cell ${c.index} ${c.prompt}`);

const workersOf = (marker: string) => processesOf(marker).filter((p) => p.cmd.includes('worker-main'));

describe('the lessons in JupyterLab 4 (headless Chromium, through the UI)', () => {
  let work = '';
  let server: LabServer | null = null;
  let context: BrowserContext | null = null;
  let page: Page | null = null;
  let nb: LabNotebook | null = null;

  const notebook = (): LabNotebook => {
    assert.ok(nb, 'JupyterLab did not start');
    return nb;
  };

  before(async () => {
    assertPrerequisites({ browser: true });
    fs.mkdirSync(SHOTS, { recursive: true });
    // Inside the repository (reports/ is ignored), so that the notebooks find the project above them.
    work = fs.mkdtempSync(path.join(REPORTS_DIR, 'jupyterlab-test-'));
    const root = path.join(work, 'notebooks');
    fs.mkdirSync(root);
    fs.symlinkSync(path.relative(root, path.join(NOTEBOOKS_DIR, '..', 'dist', 'lib')), path.join(root, 'lib'));
    for (const file of [LESSON_00, LESSON_02]) fs.copyFileSync(path.join(NOTEBOOKS_DIR, file), path.join(root, file));
    server = new LabServer({ work, root, env: { [SETTING_ENV]: 'smoke' } });
    await server.start();
    ({ context, page } = await launchBrowser(path.join(work, 'chromium-profile')));
    nb = new LabNotebook(page, server);
  }, { timeout: 120_000 });

  after(async () => {
    await context?.close().catch(() => undefined);
    await server?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('lesson 00: Run > Run All Cells runs every cell without an error; JupyterLab draws the Vega-Lite and Plotly charts; progress updates one output in place', { timeout: RUN_ALL_MS + 60_000 }, async () => {
    const n = notebook();
    await n.open(LESSON_00);
    await n.menu('Run', 'Run All Cells');
    // Run A (cell 8) trains in the kernel: its progress view is one output, replaced as it goes.
    const progress: { outputs: number; text: string }[] = [];
    const cells = await waitFor('Run All to finish', RUN_ALL_MS, async () => {
      const now = await n.cells();
      const runA = now.find((c) => c.index === 8);
      if (runA && runA.prompt === '[*]:' && runA.outputs.length > 0) progress.push({ outputs: runA.outputs.length, text: runA.outputs[0].text });
      if (now.some((c) => c.prompt.includes('*')) || (await n.kernelStatus()) !== 'idle') return undefined;
      return now;
    }, 100);
    await n.screenshot(path.join(SHOTS, '00-after-run-all.png'));

    assert.deepEqual(errorsIn(cells), [], 'error outputs');
    assert.deepEqual(notRun(cells), [], 'code cells that did not run');
    assert.ok(progress.every((p) => p.outputs === 1), `the progress view was not one output: ${progress.map((p) => p.outputs).join(',')}`);
    const distinct = new Set(progress.map((p) => p.text));
    assert.ok(distinct.size >= 2, `the progress view never changed while run A trained (${progress.length} samples)`);

    // JupyterLab's own renderers drew the charts: Vega-Lite as SVG with marks, Plotly with its traces.
    const vega = n.panel.locator('.jp-RenderedVegaLite .vega-embed');
    assert.equal(await vega.count(), 2, 'Vega-Lite charts drawn by JupyterLab');
    for (let i = 0; i < 2; i++) {
      const marks = await vega.nth(i).locator('svg.marks g[class^="mark-"] path').count();
      assert.ok(marks > 0, `Vega-Lite chart ${i} has no marks`);
    }
    const plotly = n.panel.locator('.jp-RenderedPlotly.js-plotly-plot');
    assert.equal(await plotly.count(), 1, 'the Plotly chart drawn by the Plotly extension');
    assert.equal(await plotly.locator('.scatterlayer .trace').count(), 3, 'the loss chart lacks its 3 runs');
    // Interactive: hovering over the plot area shows a data point's label.
    await plotly.scrollIntoViewIfNeeded();
    const area = await plotly.locator('.nsewdrag').first().boundingBox();
    assert.ok(area, 'no plot area');
    await plotly.locator('.nsewdrag').first().hover({ position: { x: area.width / 2, y: area.height / 2 } });
    await waitFor('a Plotly hover label', 5_000, async () => ((await plotly.locator('.hoverlayer .hovertext').count()) > 0 ? true : undefined));
    await plotly.screenshot({ path: path.join(SHOTS, '00-plotly-hover.png') });
    await vega.first().screenshot({ path: path.join(SHOTS, '00-vega.png') });
    const text = cells.flatMap((c) => c.outputs.map((o) => o.text)).join('\n');
    assert.match(text, /A vs B: 1 x 64 vs 2 x 32/);
    // What the last test's "no process left" stands on: the kernel is found among this test's processes.
    assert.ok(processesOf(work).some((p) => p.cmd.includes('tslab')), 'the kernel is not among the processes of the test folder');
  });

  it('lesson 00: File > Save and Export Notebook As > HTML gives a report holding every chart as an image', { timeout: 120_000 }, async () => {
    const n = notebook();
    // The dialog's "Sanitize HTML output" (checked by default) drops every output but text and PNG or
    // JPEG images, and escapes HTML: the lessons' charts and tables are their own, so it is unchecked.
    const download = await n.exportHtml({ sanitize: false });
    const file = path.join(SHOTS, '00-export.html');
    await download.saveAs(file);
    const html = fs.readFileSync(file, 'utf8');
    const images = [...html.matchAll(/<img[^>]+src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/g)];
    // 2 Vega-Lite charts (their image/svg+xml) and the Plotly chart's static image.
    assert.ok(images.length >= 3, `the report holds ${images.length} chart images, not 3`);
    for (const [, base64] of images) assert.match(Buffer.from(base64, 'base64').toString('utf8'), /<svg[\s\S]*<\/svg>\s*$/);
    assert.ok(html.includes('window.Plotly'), 'the report lacks plotly.js');
    assert.match(html, /A vs B: 1 x 64 vs 2 x 32/);
  });

  it('lesson 00: Kernel > Interrupt Kernel stops a 2-worker run within 5 s, leaves no worker, and the next cell runs', { timeout: 240_000 }, async (t) => {
    const n = notebook();
    // A longer run B: more images in the smoke setting.
    await n.setSource(SETTINGS_00.index, editedSettings(LESSON_00, SETTINGS_00, 'smoke: { trainSubset: 40_000, valSubset: 200, epochs: 3 },'));
    await n.run(SETTINGS_00.index);
    await n.waitDone(60_000);
    assert.match((await n.codeCell(SETTINGS_00.index)).outputs.map((o) => o.text).join(''), /trainSubset: 40000/);

    const runB = 10;
    await n.run(runB);
    const samples: string[] = [];
    let seen: CellView | null = null;
    await waitFor('two workers and training progress', 90_000, async () => {
      const cell = seen = await n.codeCell(runB);
      if (cell.outputs.length === 1) samples.push(cell.outputs[0].text);
      // The progress bar's percentage, above 0.
      return workersOf(work).length === 2 && / (?:[1-9]\d*\.\d|0\.[1-9])%/.test(cell.outputs[0]?.text ?? '') ? true : undefined;
    }).catch(async (e: Error) => {
      await n.screenshot(path.join(SHOTS, '00-no-progress.png'));
      throw new Error(`${e.message}: cell ${runB} ${JSON.stringify(seen)}; workers: ${workersOf(work).length} of ${processesOf(work).map((p) => p.cmd.slice(0, 80)).join('; ')}`);
    });
    await sleep(1500);
    const running = await n.codeCell(runB);
    assert.equal(running.prompt, '[*]:');
    assert.equal(running.outputs.length, 1, 'the progress view is one output');
    await n.screenshot(path.join(SHOTS, '00-before-interrupt.png'));

    const started = Date.now();
    await n.menu('Kernel', 'Interrupt Kernel');
    const stopped = await waitFor('the cell to stop', 30_000, async () => {
      const cell = await n.codeCell(runB);
      return cell.prompt !== '[*]:' && (await n.kernelStatus()) === 'idle' ? cell : undefined;
    }, 100);
    const seconds = (Date.now() - started) / 1000;
    t.diagnostic(`the cell stopped ${seconds.toFixed(1)} s after Kernel > Interrupt Kernel`);
    await n.screenshot(path.join(SHOTS, '00-after-interrupt.png'));
    assert.ok(seconds <= 5, `the cell stopped ${seconds.toFixed(1)} s after the interrupt`);
    // tslab's own word for it: "Error: Interrupted asynchronously".
    assert.match(stopped.outputs.map((o) => o.text).join('\n'), /Interrupted/);
    await waitFor('the workers to end', 2_000, async () => (workersOf(work).length === 0 ? true : undefined)).catch(() => undefined);
    assert.deepEqual(workersOf(work).map((p) => p.cmd), [], 'worker processes left after the interrupt');

    // The next cell runs: the settings cell, back to the committed smoke setting.
    await n.setSource(SETTINGS_00.index, committedSource(LESSON_00, SETTINGS_00.index));
    await n.run(SETTINGS_00.index);
    const after = await n.waitDone(30_000);
    const settings = after.find((c) => c.index === SETTINGS_00.index)!;
    assert.match(settings.prompt, /^\[\d+\]:$/);
    assert.match(settings.outputs.map((o) => o.text).join(''), /setting: smoke: \{ trainSubset: 512/);
  });

  it('lesson 02: after Run All, an edited settings cell (another learning rate) rerun with the cells below replaces every result', { timeout: 2 * RUN_ALL_MS }, async () => {
    const n = notebook();
    await n.open(LESSON_02);
    await n.menu('Run', 'Run All Cells');
    const first = await n.waitDone(RUN_ALL_MS);
    assert.deepEqual(errorsIn(first), [], 'error outputs');
    assert.deepEqual(notRun(first), [], 'code cells that did not run');
    const outputsOf = (cells: CellView[]) => cells.map((c) => `${c.index}:${c.outputs.length}`).join(' ');
    const plainRun = (cells: CellView[]) => cells.find((c) => c.index === 4)!.outputs.map((o) => o.text).join('\n');
    assert.match(plainRun(first), / 0\.0100 /, 'the learning rate 0.01 in the run\'s tables');

    await n.setSource(SETTINGS_02.index, editedSettings(LESSON_02, SETTINGS_02, SETTINGS_02.smoke.replace('baseLr: 0.01', 'baseLr: 0.05')));
    await n.select(SETTINGS_02.index);
    await n.menu('Run', 'Run Selected Cell and All Below');
    await sleep(1000);
    const second = await n.waitDone(RUN_ALL_MS);
    await n.screenshot(path.join(SHOTS, '02-after-rerun.png'));
    // Redeclared consts, imports and functions of the rerun cells did not break them.
    assert.deepEqual(errorsIn(second), [], 'error outputs after the rerun');
    assert.deepEqual(notRun(second), [], 'code cells that did not run');
    const count = (cells: CellView[], index: number) => Number(/\d+/.exec(cells.find((c) => c.index === index)!.prompt)![0]);
    for (const c of second.filter((c) => c.index >= SETTINGS_02.index)) {
      assert.ok(count(second, c.index) > count(first, c.index), `cell ${c.index} was not rerun`);
    }
    assert.match(second.find((c) => c.index === SETTINGS_02.index)!.outputs.map((o) => o.text).join(''), /baseLr: 0\.05/);
    assert.match(plainRun(second), / 0\.0500 /, 'the new learning rate in the run\'s tables');
    assert.doesNotMatch(plainRun(second), / 0\.0100 /, 'the old learning rate is still shown');
    // Replaced, not added: every cell has as many outputs as after the first run.
    assert.equal(outputsOf(second), outputsOf(first));
  });

  it('lesson 02: a bad setting shows its error in the cell, naming the setting, and nothing trains', { timeout: 120_000 }, async () => {
    const n = notebook();
    const runsBefore = fs.existsSync(path.join(work, '..', '..', 'runs')) ? fs.readdirSync(path.join(work, '..', '..', 'runs')).length : 0;
    await n.setSource(SETTINGS_02.index, editedSettings(LESSON_02, SETTINGS_02, SETTINGS_02.smoke.replace('batchSize: 32', 'batchSize: 0')));
    await n.select(SETTINGS_02.index);
    await n.menu('Run', 'Run Selected Cell and All Below');
    await sleep(1000);
    const cells = await n.waitDone(60_000);
    const estimate = cells.find((c) => c.index === 3)!;
    const shown = estimate.outputs.filter((o) => o.mime === STDERR).map((o) => o.text).join('\n');
    await n.cell(3).scrollIntoViewIfNeeded();
    await n.screenshot(path.join(SHOTS, '02-bad-setting.png'));
    assert.match(shown, /batchSize \(--batch-size\) must be a positive integer \(got '?0'?\)/);
    // Its first line says what went wrong, before any stack frame.
    assert.match(shown.trim().split('\n')[0], /batchSize/);
    const runsAfter = fs.existsSync(path.join(work, '..', '..', 'runs')) ? fs.readdirSync(path.join(work, '..', '..', 'runs')).length : 0;
    assert.equal(runsAfter, runsBefore, 'a run was started');
  });

  it('Notebook 7 opens a lesson with the same kernel and runs a cell', { timeout: 120_000 }, async () => {
    const p = page!;
    await p.goto(server!.url(`/notebooks/${LESSON_02}`));
    const cell = p.locator('.jp-Notebook .jp-WindowedPanel-viewport > .jp-Cell').nth(SETTINGS_02.index);
    await cell.waitFor({ timeout: 60_000 });
    await notebook().waitForKernel(LESSON_02);
    await cell.locator('.jp-InputPrompt').click();
    await p.keyboard.press('Control+Enter');
    const output = await waitFor('the settings cell to print', 60_000, async () => {
      const text = await cell.locator('.jp-OutputArea-output').allTextContents();
      return text.join('').includes('setting: smoke') ? text.join('') : undefined;
    });
    await p.screenshot({ path: path.join(SHOTS, '02-notebook7.png') });
    assert.match(output, /setting: smoke/);
  });

  it('leaves no process behind: server, kernels, training workers and browser all stopped', async () => {
    await context?.close();
    context = null;
    await server?.stop();
    await sleep(500);
    const left = work ? processesOf(work).map((p) => `${p.pid} ${p.cmd.slice(0, 120)}`) : [];
    assert.deepEqual(left, [], 'processes left');
    assert.ok(server && !server.running, 'the JupyterLab server still runs');
  });
});
