/**
 * A JupyterLab 4 server of this checkout (.venv's, with the tslab kernel) on 127.0.0.1, and a
 * headless Chromium page that uses it the way a person does: menus, the keyboard, the cell editor.
 * What the checks read comes from the page (the DOM JupyterLab drew), never from the server's files.
 *
 * Everything the server starts is marked by one folder (`work`): the notebooks' copy and Jupyter's
 * runtime files, whose kernel connection files are named on the kernels' command lines, so
 * `processesOf(work)` finds the server, its kernels and their training workers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BrowserContext, Download, Locator, Page } from 'playwright-core';
import { freePort } from '../../lib/launch/launch';
import { CHROMIUM, JUPYTER, jupyterEnv } from '../../scripts/jupyter';
import { killProcessesOf } from './processes';

/** Chromium's flags for this machine (no GPU, no network, no sandbox as root, nothing in the background). */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined, or throws `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface LabServerOptions {
  /** The folder the server and everything it starts live in (made by the caller; removed by no one here). */
  work: string;
  /** The folder JupyterLab shows: the notebooks' copy. */
  root: string;
  env?: NodeJS.ProcessEnv;
}

/** `jupyter lab` on 127.0.0.1 with a token, settings and runtime files of its own. */
export class LabServer {
  readonly token = randomBytes(16).toString('hex');
  base = '';
  private child: ChildProcess | null = null;
  private log = '';

  constructor(private readonly options: LabServerOptions) {}

  get output(): string {
    return this.log;
  }

  get running(): boolean {
    return this.child != null && this.child.exitCode == null && this.child.signalCode == null;
  }

  async start(): Promise<void> {
    const { work, root } = this.options;
    // No news or update checks (no network here): the toast would cover the notebook.
    const notification = path.join(work, 'lab-settings', '@jupyterlab', 'apputils-extension');
    fs.mkdirSync(notification, { recursive: true });
    fs.writeFileSync(path.join(notification, 'notification.jupyterlab-settings'), JSON.stringify({ fetchNews: 'false', checkForUpdates: false }));
    const env = jupyterEnv({
      ...this.options.env,
      JUPYTER_CONFIG_DIR: path.join(work, 'config'),
      JUPYTER_RUNTIME_DIR: path.join(work, 'runtime'),
      JUPYTERLAB_SETTINGS_DIR: path.join(work, 'lab-settings'),
      JUPYTERLAB_WORKSPACES_DIR: path.join(work, 'lab-workspaces'),
    });
    const port = await freePort();
    this.base = `http://127.0.0.1:${port}`;
    const args = [
      'lab', '--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0', `--ServerApp.root_dir=${root}`,
      `--IdentityProvider.token=${this.token}`, '--ServerApp.password=',
      ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
    ];
    this.child = spawn(JUPYTER, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => { this.log += d.toString(); });
    this.child.stderr?.on('data', (d: Buffer) => { this.log += d.toString(); });
    await waitFor(`jupyter lab to answer:\n${this.log}`, 60_000, async () => {
      if (this.child?.exitCode != null) throw new Error(`jupyter lab exited (code ${this.child.exitCode}):\n${this.log}`);
      return (await fetch(this.url('/api/status')).then((r) => r.ok, () => false)) ? true : undefined;
    });
  }

  url(route: string): string {
    return `${this.base}${route}${route.includes('?') ? '&' : '?'}token=${this.token}`;
  }

  /** Asks the server to shut its kernels and itself down, then insists; then kills what is left of `work`. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && this.running) {
      await fetch(this.url('/api/shutdown'), { method: 'POST' }).catch(() => undefined);
      for (let i = 0; i < 100 && this.running; i++) await sleep(100);
      if (this.running && child.pid) {
        try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
        for (let i = 0; i < 50 && this.running; i++) await sleep(100);
      }
    }
    killProcessesOf(this.options.work);
  }
}

export async function launchBrowser(profile: string): Promise<{ context: BrowserContext; page: Page }> {
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 }, acceptDownloads: true,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

/** What jupyter_server's /api/sessions says of a notebook's session. */
interface SessionModel {
  path: string;
  kernel?: { execution_state: string; connections: number };
}

/** A code cell as JupyterLab shows it. */
export interface CellView {
  /** Its index among all cells of the notebook (markdown cells count). */
  index: number;
  /** "[3]:", "[*]:" (running or queued) or "[ ]:" (not run). */
  prompt: string;
  /** Each output's MIME type (data-mime-type) and text. */
  outputs: { mime: string; text: string }[];
}

/** The notebook open in JupyterLab's main area, driven through the page. */
export class LabNotebook {
  constructor(readonly page: Page, readonly server: LabServer) {}

  /** The visible notebook panel (others stay in their hidden tabs). */
  get panel(): Locator {
    return this.page.locator('.jp-NotebookPanel:not(.lm-mod-hidden)');
  }

  cell(index: number): Locator {
    return this.panel.locator('.jp-Notebook .jp-WindowedPanel-viewport > .jp-Cell').nth(index);
  }

  /**
   * Opens a notebook of the server's root folder and waits until its kernel is connected and idle:
   * the page may show "Idle" before the kernel's websocket is up, and cells run then are lost.
   */
  async open(file: string): Promise<void> {
    await this.page.goto(this.server.url(`/lab/tree/${encodeURIComponent(file)}`));
    await this.panel.locator('.jp-Notebook .jp-WindowedPanel-viewport > .jp-Cell').first().waitFor({ timeout: 60_000 });
    await this.waitForKernel(file);
    await this.waitIdle(60_000);
  }

  /** Waits until the server says the notebook's kernel is connected and idle (any frontend's). */
  async waitForKernel(file: string): Promise<void> {
    await waitFor(`the kernel of ${file} to be connected`, 60_000, async () => {
      const sessions = await fetch(this.server.url('/api/sessions')).then((r) => r.json() as Promise<SessionModel[]>, () => []);
      const session = sessions.find((s) => s.path === file || s.path.endsWith(`/${file}`));
      return session?.kernel && session.kernel.connections > 0 && session.kernel.execution_state === 'idle' ? true : undefined;
    });
  }

  async kernelStatus(): Promise<string | null> {
    return this.panel.locator('.jp-Notebook-ExecutionIndicator').getAttribute('data-status').catch(() => null);
  }

  async waitIdle(timeoutMs: number): Promise<void> {
    await waitFor('the kernel to be idle', timeoutMs, async () => ((await this.kernelStatus()) === 'idle' ? true : undefined));
  }

  /** Clicks a menu of the menu bar, then the items of its submenus: menu('Run', 'Run All Cells'). */
  async menu(top: string, ...items: string[]): Promise<void> {
    await this.page.locator('.lm-MenuBar-itemLabel', { hasText: new RegExp(`^${top}$`) }).click();
    for (const [i, item] of items.entries()) {
      const entry = this.page.locator('.lm-Menu:visible .lm-Menu-item', { has: this.page.locator('.lm-Menu-itemLabel', { hasText: new RegExp(`^${item}$`) }) }).last();
      if (i < items.length - 1) await entry.hover();
      else await entry.click();
    }
  }

  /** Every code cell with its prompt and outputs (from the DOM's text: cells out of view keep theirs). */
  async cells(): Promise<CellView[]> {
    return this.panel.locator('.jp-Notebook .jp-WindowedPanel-viewport > .jp-Cell').evaluateAll((els) => els.map((el, index) => {
      if (!el.classList.contains('jp-CodeCell')) return null;
      const prompt = el.querySelector('.jp-InputArea-prompt')?.textContent?.trim() ?? '';
      // The text nodes joined by spaces: table cells stay apart (textContent runs them together).
      const words = (node: (typeof els)[number]) => {
        const texts: string[] = [];
        const walker = node.ownerDocument.createTreeWalker(node, 4 /* NodeFilter.SHOW_TEXT */);
        for (let t = walker.nextNode(); t; t = walker.nextNode()) texts.push(t.textContent ?? '');
        return texts.join(' ').replace(/[ \t]+/g, ' ');
      };
      const outputs = [...el.querySelectorAll('.jp-OutputArea-output')].map((o) => ({
        mime: o.getAttribute('data-mime-type') ?? [...o.classList].find((c) => c.startsWith('jp-Rendered')) ?? '',
        text: words(o),
      }));
      return { index, prompt, outputs };
    }).filter((c): c is { index: number; prompt: string; outputs: { mime: string; text: string }[] } => c !== null));
  }

  async codeCell(index: number): Promise<CellView> {
    const found = (await this.cells()).find((c) => c.index === index);
    if (!found) throw new Error(`cell ${index} is not a code cell`);
    return found;
  }

  /** Waits until no code cell is running or queued and the kernel is idle; returns the cells. */
  async waitDone(timeoutMs: number): Promise<CellView[]> {
    return waitFor('the cells to finish', timeoutMs, async () => {
      const cells = await this.cells();
      if (cells.some((c) => c.prompt.includes('*'))) return undefined;
      return (await this.kernelStatus()) === 'idle' ? cells : undefined;
    }, 500);
  }

  /** Selects a cell by clicking its prompt (command mode). */
  async select(index: number): Promise<void> {
    const cell = this.cell(index);
    await cell.scrollIntoViewIfNeeded();
    await cell.locator('.jp-InputPrompt').click();
  }

  /** Replaces a cell's code as a person pasting it would: click into the editor, select all, insert. */
  async setSource(index: number, source: string): Promise<void> {
    const editor = this.cell(index).locator('.cm-content');
    await editor.scrollIntoViewIfNeeded();
    await editor.click();
    await this.page.keyboard.press('Control+a');
    await this.page.keyboard.insertText(source);
    await this.page.keyboard.press('Escape');
  }

  async source(index: number): Promise<string> {
    return this.cell(index).locator('.cm-content').evaluate((el) => [...el.querySelectorAll('.cm-line')].map((l) => l.textContent ?? '').join('\n'));
  }

  /** Runs one cell in place (Ctrl+Enter, as on the keyboard). */
  async run(index: number): Promise<void> {
    await this.select(index);
    await this.page.keyboard.press('Control+Enter');
  }

  /**
   * File > Save and Export Notebook As > HTML, then JupyterLab's "Export as HTML" dialog: its
   * "Sanitize HTML output" box set as asked, Ok. Returns the file the browser downloads.
   */
  async exportHtml(options: { sanitize: boolean }): Promise<Download> {
    const download = this.page.waitForEvent('download', { timeout: 90_000 });
    await this.menu('File', 'Save and Export Notebook As', 'HTML');
    const dialog = this.page.locator('.jp-Dialog');
    await dialog.waitFor({ timeout: 10_000 });
    await dialog.locator('input[type=checkbox]').setChecked(options.sanitize);
    await dialog.locator('button', { hasText: /^Ok$/ }).click();
    return download;
  }

  async screenshot(file: string): Promise<void> {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await this.page.screenshot({ path: file });
  }
}
