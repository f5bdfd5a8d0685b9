/**
 * `npm run bench`: training throughput (forward + backward + SGD momentum
 * update) of the models on ONE core, for each engine that works here, next to
 * PyTorch on the same core, measured in the same run.
 *
 *   node dist/bench/training.js [--models cnn,wideresnet-dw,wideresnet]
 *     [--batches 32,128] [--engines tensorflow-gpu,tensorflow,wasm,cpu]
 *     [--min-seconds 5] [--min-steps 3] [--max-minutes 3] [--core N]
 *     [--no-pytorch] [--json] [--quick] [--verbose]
 *
 * Every configuration (engine x model x batch) runs in its own child process
 * (one engine per process; a fresh wasm heap each time), pinned with taskset
 * to one core, one after the other (never in parallel). PyTorch runs
 * bench/pytorch_reference.py with /usr/bin/python3, 1 thread, on the same
 * core, right after our engines for the same model and batch.
 *
 * Exit status: 0 when everything ran or was skipped on purpose; 1 when an
 * engine (or PyTorch) failed unexpectedly; 2 on a usage error.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { EngineName } from '../lib/backend/select';
import { MODEL_NAMES, type ModelName } from '../lib/train/config';
import { ENGINE_NAMES, RESULT_MARKER, type WorkerJob, type WorkerResult } from './protocol';

const ROOT = path.resolve(__dirname, '..', '..');
const PYTHON = '/usr/bin/python3';
const PYTORCH_SCRIPT = path.join(ROOT, 'bench', 'pytorch_reference.py');

type Runner = EngineName | 'pytorch';

/**
 * Rough training images/s on one core (AMD EPYC, measured with this project,
 * wasm SIMD; tensorflow guessed like wasm), used only to estimate how long a
 * configuration would take before starting it. Each run rescales an engine's
 * estimates by how fast its previous configuration actually was.
 */
const PRIOR_IMAGES_PER_SEC: Record<Runner, Partial<Record<ModelName, number>>> = {
  wasm: { cnn: 400, 'wideresnet-dw': 30, wideresnet: 1.6 },
  cpu: { cnn: 2.8, 'wideresnet-dw': 0.1, wideresnet: 0.01 },
  tensorflow: { cnn: 340, 'wideresnet-dw': 14, wideresnet: 1.6 },
  'tensorflow-gpu': {},
  pytorch: { cnn: 830, 'wideresnet-dw': 32, wideresnet: 6 },
};
/** Seconds to start a child, load the data and build the model. */
const STARTUP_SECONDS: Record<Runner, number> = { wasm: 3, cpu: 3, tensorflow: 4, 'tensorflow-gpu': 10, pytorch: 3 };
/**
 * The estimate counts the warm-up as one step. In fact it often takes ~1.5
 * steps (kernel set-up, heap growth), so a child may run up to LIMIT_FACTOR x
 * --max-minutes before it gives up (skips after its warm-up, or stops timing).
 */
const WARMUP_FACTOR = 1;
const LIMIT_FACTOR = 1.5;

const ENGINE_PACKAGE: Partial<Record<EngineName, string>> = {
  tensorflow: '@tensorflow/tfjs-node',
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
};

class UsageError extends Error {}

const HELP = `Usage: npm run bench -- [options]     (or: node dist/bench/training.js [options])

Training throughput (forward + backward + SGD momentum 0.9 update) on one core,
per engine, next to PyTorch on the same core.

  --models LIST       comma-separated, from ${MODEL_NAMES.join(', ')} (default: all)
  --batches LIST      per-device batch sizes (default 32,128)
  --engines LIST      from ${ENGINE_NAMES.join(', ')} (default: all; those not
                      installed or not starting here are listed as such)
  --min-seconds S     time steps until at least S seconds... (default 5)
  --min-steps N       ...and at least N steps (default 3), after 1 warm-up step
  --max-minutes M     skip a configuration estimated to take longer (default 3)
  --core N            the CPU to pin every child to (default: the last one allowed)
  --no-pytorch        do not run the PyTorch reference
  --json              one JSON object per line instead of the table
  --quick             models cnn,wideresnet-dw, batch 32, min-seconds 2
                      (explicit flags still win)
  --verbose           pass the children's progress lines through (stderr)
  -h, --help          this text`;

interface Options {
  models: ModelName[];
  batches: number[];
  engines: EngineName[];
  enginesExplicit: boolean;
  minSeconds: number;
  minSteps: number;
  maxMinutes: number;
  core: number | null;
  pytorch: boolean;
  json: boolean;
  verbose: boolean;
}

function parseList<T extends string>(text: string, allowed: readonly T[], what: string): T[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`--${what} is empty`);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new UsageError(`unknown ${what.replace(/s$/, '')} '${item}'; choose from ${allowed.join(', ')}`);
  }
  return [...new Set(items)] as T[];
}

function parseNumber(text: string, flag: string, integer: boolean, min: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${text}'`);
  }
  return n;
}

function allowedCpus(): number[] {
  try {
    const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'));
    if (line) {
      const cpus: number[] = [];
      for (const part of line.split(':')[1].trim().split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a; c <= (b ?? a); c++) cpus.push(c);
      }
      if (cpus.length > 0) return cpus;
    }
  } catch { /* not Linux */ }
  return os.cpus().map((_, i) => i);
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string' },
      batches: { type: 'string' },
      engines: { type: 'string' },
      'min-seconds': { type: 'string' },
      'min-steps': { type: 'string' },
      'max-minutes': { type: 'string' },
      core: { type: 'string' },
      'no-pytorch': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return null;
  const quick = values.quick === true;
  const batches = (values.batches ?? (quick ? '32' : '32,128')).split(',').map((s) => s.trim()).filter((s) => s !== '')
    .map((s) => parseNumber(s, 'batches', true, 1));
  if (batches.length === 0) throw new UsageError('--batches is empty');
  let core: number | null = null;
  const cpus = allowedCpus();
  if (values.core !== undefined) {
    core = parseNumber(values.core, 'core', true, 0);
    if (!cpus.includes(core)) throw new UsageError(`--core ${core} is not one of the CPUs this process may use (${cpus.join(',')})`);
  } else {
    core = cpus[cpus.length - 1] ?? null;
  }
  return {
    models: parseList(values.models ?? (quick ? 'cnn,wideresnet-dw' : MODEL_NAMES.join(',')), MODEL_NAMES, 'models'),
    batches: [...new Set(batches)],
    engines: parseList(values.engines ?? ENGINE_NAMES.join(','), ENGINE_NAMES, 'engines'),
    enginesExplicit: values.engines !== undefined,
    minSeconds: parseNumber(values['min-seconds'] ?? (quick ? '2' : '5'), 'min-seconds', false, 0),
    minSteps: parseNumber(values['min-steps'] ?? '3', 'min-steps', true, 1),
    maxMinutes: parseNumber(values['max-minutes'] ?? '3', 'max-minutes', false, 0.1),
    core,
    pytorch: values['no-pytorch'] !== true,
    json: values.json === true,
    verbose: values.verbose === true,
  };
}

// ---------------------------------------------------------------- machine facts

function packageVersion(name: string): string {
  try {
    let dir = path.dirname(require.resolve(name, { paths: [ROOT] }));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? '?';
      }
      if (path.dirname(dir) === dir) return '?';
      dir = path.dirname(dir);
    }
  } catch {
    return 'not installed';
  }
}

function isInstalled(name: string): boolean {
  try {
    require.resolve(name, { paths: [ROOT] });
    return true;
  } catch {
    return false;
  }
}

function cpuModel(): string {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.split(':').slice(1).join(':').trim();
  } catch { /* not Linux */ }
  return os.cpus()[0]?.model ?? 'unknown';
}

function tasksetWorks(core: number | null): boolean {
  if (core == null) return false;
  const r = spawnSync('taskset', ['-c', String(core), 'true'], { stdio: 'ignore' });
  return r.status === 0;
}

function loadavg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

// ---------------------------------------------------------------- children

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /**
   * CPU seconds / wall seconds of the child over the last `shareWindowSeconds`
   * of its life (sampled from /proc every 250 ms), if known. The end of a run
   * is its timed steps; its start (imports) waits on the disk.
   */
  cpuShare: number | null;
}

/** Threads of every library we might touch, set to one. */
const ONE_THREAD_ENV = {
  OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1',
  TF_NUM_INTRAOP_THREADS: '1', TF_NUM_INTEROP_THREADS: '1',
};

let clockTicks: number | null = null;

/** utime + stime of a process in seconds, from /proc (null when unreadable). */
function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (clockTicks == null) {
      const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
      clockTicks = Number(r.stdout) > 0 ? Number(r.stdout) : 100;
    }
    // fields[0] is the state (field 3 of stat): utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}

function runChild(command: string, args: string[], pin: number | null, hardLimitSeconds: number, verbose: boolean, shareWindowSeconds = 1): Promise<ChildOutcome> {
  const [cmd, cmdArgs] = pin == null ? [command, args] : ['taskset', ['-c', String(pin), command, ...args]];
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...ONE_THREAD_ENV },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (verbose) process.stderr.write(d);
    });
    // taskset execs the command, so child.pid is the benchmark process itself.
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, hardLimitSeconds * 1000);
    const started = performance.now();
    const samples: { wall: number; cpu: number }[] = [];
    const sampler = setInterval(() => {
      const cpu = child.pid == null ? null : cpuSecondsOf(child.pid);
      if (cpu != null) samples.push({ wall: (performance.now() - started) / 1000, cpu });
    }, 250);
    const share = (): number | null => {
      const last = samples[samples.length - 1];
      if (last == null) return null;
      const first = [...samples].reverse().find((x) => last.wall - x.wall >= shareWindowSeconds);
      return first == null ? null : (last.cpu - first.cpu) / (last.wall - first.wall);
    };
    child.on('error', (err) => { stderr += `\n${err.message}`; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(sampler);
      resolve({ code, signal, stdout, stderr, timedOut, cpuShare: share() });
    });
  });
}

function lastLines(text: string, n = 15): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function childFailure(outcome: ChildOutcome, hardLimitSeconds: number): string {
  if (outcome.timedOut) return `killed after ${Math.round(hardLimitSeconds)} s (hard time limit)`;
  const how = outcome.signal ? `killed by ${outcome.signal}` : `exited with status ${outcome.code}`;
  return `${how}${outcome.stderr.trim() ? `:\n${lastLines(outcome.stderr)}` : ' (no output)'}`;
}

// ---------------------------------------------------------------- planning

interface Plan {
  run: boolean;
  minSteps: number;
  estimatedSeconds: number | null;
  /** Why it is skipped ("skipped (would take ~N min)"), or what was changed (e.g. "min-steps 1"). */
  note: string | null;
  /** More on a skip, for the notes column. */
  detail?: string;
}

function fmtDuration(seconds: number): string {
  if (seconds < 90) return `~${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 10 * 60) return `~${(seconds / 60).toFixed(1)} min`;
  if (seconds < 90 * 60) return `~${Math.round(seconds / 60)} min`;
  return `~${(seconds / 3600).toFixed(seconds < 36000 ? 1 : 0)} h`;
}

class Planner {
  /** measured / prior images/s of each runner's latest configuration. */
  private readonly speedFactor = new Map<Runner, number>();

  constructor(private readonly opts: Options) {}

  estimate(runner: Runner, model: ModelName, batch: number, minSteps: number): number | null {
    const prior = PRIOR_IMAGES_PER_SEC[runner][model];
    if (prior == null) return null;
    const stepSeconds = batch / (prior * (this.speedFactor.get(runner) ?? 1));
    const timedSteps = Math.max(minSteps, Math.ceil(this.opts.minSeconds / stepSeconds));
    return STARTUP_SECONDS[runner] + WARMUP_FACTOR * stepSeconds + timedSteps * stepSeconds;
  }

  learn(runner: Runner, model: ModelName, imagesPerSec: number): void {
    const prior = PRIOR_IMAGES_PER_SEC[runner][model];
    if (prior != null && imagesPerSec > 0) this.speedFactor.set(runner, Math.min(5, Math.max(0.2, imagesPerSec / prior)));
  }

  plan(runner: Runner, model: ModelName, batch: number): Plan {
    const budget = this.opts.maxMinutes * 60;
    // The pure-JS engine trains the cnn at a few images/s: only the smallest
    // configuration is worth running, with one timed step.
    if (runner === 'cpu') {
      const est = this.estimate(runner, model, batch, 1);
      if (model !== 'cnn' || batch > 32) {
        return {
          run: false, minSteps: 1, estimatedSeconds: est, note: `skipped (would take ${est == null ? 'very long' : fmtDuration(est)})`,
          detail: 'the pure-JS cpu engine runs only cnn at batch <= 32',
        };
      }
      if (est != null && est > budget) {
        return { run: false, minSteps: 1, estimatedSeconds: est, note: `skipped (would take ${fmtDuration(est)})` };
      }
      return { run: true, minSteps: 1, estimatedSeconds: est, note: 'min-steps 1 (pure-JS engine)' };
    }
    // Dense WideResNet on a CPU engine takes tens of seconds a step.
    const slowDense = model === 'wideresnet' && runner !== 'tensorflow-gpu' && runner !== 'pytorch';
    let minSteps = slowDense ? 1 : this.opts.minSteps;
    let note: string | null = slowDense && this.opts.minSteps > 1 ? 'min-steps 1 (dense WideResNet)' : null;
    let est = this.estimate(runner, model, batch, minSteps);
    if (est != null && est > budget && minSteps > 1) {
      const one = this.estimate(runner, model, batch, 1);
      if (one != null && one <= budget) {
        minSteps = 1;
        est = one;
        note = `min-steps 1 to fit --max-minutes ${this.opts.maxMinutes}`;
      }
    }
    if (est != null && est > budget) {
      return { run: false, minSteps, estimatedSeconds: est, note: `skipped (would take ${fmtDuration(est)})` };
    }
    return { run: true, minSteps, estimatedSeconds: est, note };
  }
}

// ---------------------------------------------------------------- rows

interface PytorchResult {
  status: 'ok' | 'skipped' | 'error' | 'off';
  imagesPerSec?: number;
  steps?: number;
  seconds?: number;
  torch?: string;
  /** CPU time / wall time of the PyTorch process over its last 0.8 x min-seconds (its timed steps), sampled from /proc. */
  cpuShare?: number | null;
  note?: string | null;
  error?: string;
}

/** Below this share of the core, a measurement is flagged as skewed by other processes. */
const SHARED_CORE = 0.9;

function sharedNote(share: number): string {
  return `got ${Math.round(100 * share)}% of the core (shared: too slow)`;
}

interface Row {
  cpuShare?: number;
  model: ModelName;
  batch: number;
  engine: EngineName;
  status: 'ok' | 'skipped' | 'failed';
  imagesPerSec?: number;
  steps?: number;
  seconds?: number;
  warmupSeconds?: number;
  microBatches?: number[];
  wasmHeapBytes?: number;
  inputs?: string;
  notes: string[];
  pytorch: PytorchResult;
  error?: string;
}

function fmtRate(x: number): string {
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function ratio(row: Row): number | null {
  if (row.status !== 'ok' || row.imagesPerSec == null) return null;
  if (row.pytorch.status !== 'ok' || !row.pytorch.imagesPerSec) return null;
  return row.imagesPerSec / row.pytorch.imagesPerSec;
}

function pytorchCell(p: PytorchResult): string {
  switch (p.status) {
    case 'ok': return fmtRate(p.imagesPerSec ?? 0) + (p.note ? '*' : '');
    case 'off': return '-';
    case 'error': return 'FAILED';
    case 'skipped': return p.note ?? 'skipped';
  }
}

function table(rows: Row[]): string {
  const head = ['model', 'batch', 'engine', 'images/s', 'PyTorch images/s', 'ratio', 'timed', 'wasm heap', 'notes'];
  const body = rows.map((r) => {
    const q = ratio(r);
    return [
      r.model,
      String(r.batch),
      r.engine,
      r.status === 'ok' ? fmtRate(r.imagesPerSec ?? 0) : r.status === 'failed' ? 'FAILED' : (r.notes[0] ?? 'skipped'),
      pytorchCell(r.pytorch),
      q == null ? '-' : `${q >= 0.1 ? q.toFixed(2) : q.toPrecision(2)}x`,
      r.status === 'ok' ? `${r.steps} step${r.steps === 1 ? '' : 's'} / ${(r.seconds ?? 0).toFixed(1)} s` : '',
      r.wasmHeapBytes != null ? `${Math.round(r.wasmHeapBytes / 2 ** 20)} MiB` : '',
      (r.status === 'skipped' ? r.notes.slice(1) : r.notes).join('; '),
    ];
  });
  const right = new Set([1, 3, 4, 5, 6, 7]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

// ---------------------------------------------------------------- main

async function main(argv: string[]): Promise<number> {
  let opts: Options | null;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`bench: error: ${(e as Error).message}\n\n${HELP}`);
      return 2;
    }
    throw e;
  }
  if (opts == null) {
    console.log(HELP);
    return 0;
  }
  const o = opts;
  const t0 = Date.now();
  const budget = o.maxMinutes * 60;
  const pin = tasksetWorks(o.core) ? o.core : null;
  const out = (obj: object) => { if (o.json) console.log(JSON.stringify(obj)); };
  const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

  const header = {
    type: 'header',
    node: process.version,
    tfjs: packageVersion('@tensorflow/tfjs'),
    tfjsBackendWasm: packageVersion('@tensorflow/tfjs-backend-wasm'),
    cpu: cpuModel(),
    logicalCpus: os.cpus().length,
    pinnedCore: pin,
    loadavgStart: os.loadavg(),
    minSeconds: o.minSeconds, minSteps: o.minSteps, maxMinutes: o.maxMinutes,
    models: o.models, batches: o.batches, engines: o.engines, pytorch: o.pytorch,
  };
  if (o.json) {
    out(header);
  } else {
    console.log('Training throughput: forward + backward + SGD (momentum 0.9) update, one core');
    console.log(`node ${header.node}, @tensorflow/tfjs ${header.tfjs} (tfjs-backend-wasm ${header.tfjsBackendWasm})`);
    console.log(`CPU: ${header.cpu} (${header.logicalCpus} logical CPUs), ${pin == null ? 'NOT pinned (taskset unavailable)' : `every run pinned to CPU ${pin} with taskset`}, one thread per engine`);
    console.log(`load average at start: ${loadavg()}${os.loadavg()[0] > 0.5 ? '  (other work on this machine skews the numbers)' : ''}`);
    console.log(`1 warm-up step, then steps timed until ${o.minSteps} steps and ${o.minSeconds} s; configurations estimated over ${o.maxMinutes} min are skipped`);
    console.log('');
  }

  // Engines: which are installed; the others are started per configuration.
  const engineStatus = new Map<EngineName, string>();
  /** Engines that failed to start in this run: not tried again. */
  const dead = new Set<EngineName>();
  const usable: EngineName[] = [];
  for (const e of o.engines) {
    const pkg = ENGINE_PACKAGE[e];
    if (pkg != null && !isInstalled(pkg)) {
      engineStatus.set(e, `not installed (${pkg} is not in node_modules: npm install ${pkg})`);
      out({ type: 'engine', engine: e, status: 'not-installed', package: pkg });
    } else {
      usable.push(e);
    }
  }
  let pytorchStatus: string | null = o.pytorch ? null : 'not run (--no-pytorch)';
  if (o.pytorch && !fs.existsSync(PYTHON)) pytorchStatus = `unavailable (${PYTHON} not found)`;
  if (o.pytorch && !fs.existsSync(PYTORCH_SCRIPT)) pytorchStatus = `unavailable (${PYTORCH_SCRIPT} not found)`;

  const planner = new Planner(o);
  const rows: Row[] = [];
  const failures: string[] = [];
  const total = o.models.length * o.batches.length * (usable.length + (o.pytorch ? 1 : 0));
  let index = 0;
  {
    // What the whole run should take, from the same estimates (before learning).
    let expected = 0;
    let unknown = 0;
    for (const model of o.models) {
      for (const batch of o.batches) {
        for (const r of [...usable, ...(o.pytorch ? ['pytorch' as const] : [])]) {
          const p = planner.plan(r, model, batch);
          if (p.run && p.estimatedSeconds != null) expected += p.estimatedSeconds;
          else if (p.run) unknown++;
        }
      }
    }
    progress(`expect ${fmtDuration(expected)} in all${unknown > 0 ? ` plus ${unknown} configuration(s) without an estimate` : ''} (configurations run one after the other)`);
  }

  for (const model of o.models) {
    for (const batch of o.batches) {
      const group: Row[] = [];
      for (const engine of usable) {
        index++;
        if (dead.has(engine)) continue; // did not start earlier in this run
        const plan = planner.plan(engine, model, batch);
        const row: Row = { model, batch, engine, status: 'skipped', notes: [], pytorch: { status: 'off' } };
        if (!plan.run) {
          row.notes.push(plan.note ?? 'skipped');
          if (plan.detail) row.notes.push(plan.detail);
          progress(`[${index}/${total}] ${engine} ${model} batch ${batch}: ${plan.note}${plan.detail ? `: ${plan.detail}` : ''}`);
          group.push(row);
          continue;
        }
        progress(`[${index}/${total}] ${engine} ${model} batch ${batch}${plan.estimatedSeconds != null ? ` (expect ${fmtDuration(plan.estimatedSeconds)})` : ''}`);
        const job: WorkerJob = { engine, model, batch, minSeconds: o.minSeconds, minSteps: plan.minSteps, limitSeconds: LIMIT_FACTOR * budget };
        const hardLimit = 2 * budget + 120;
        const outcome = await runChild(process.execPath, [path.join(__dirname, 'worker.js'), JSON.stringify(job)], pin, hardLimit, o.verbose);
        const line = outcome.stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
        const result = line ? (JSON.parse(line.slice(RESULT_MARKER.length)) as WorkerResult) : null;
        if (result == null || outcome.timedOut) {
          row.status = 'failed';
          row.error = childFailure(outcome, hardLimit);
        } else if (result.status === 'unavailable') {
          engineStatus.set(engine, `does not start here: ${result.error}`);
          dead.add(engine);
          out({ type: 'engine', engine, status: 'unavailable', error: result.error });
          // wasm and cpu ship with tfjs: failing to start is a bug. An optional
          // native engine that is installed but broken counts when asked for.
          if (o.enginesExplicit || engine === 'wasm' || engine === 'cpu') failures.push(`${engine}: ${result.error}`);
          continue;
        } else if (result.status === 'error') {
          row.status = 'failed';
          row.error = result.error;
        } else {
          if (!engineStatus.has(engine) && result.engineDescription) engineStatus.set(engine, result.engineDescription);
          row.microBatches = result.microBatches;
          row.wasmHeapBytes = result.wasmHeapBytes;
          row.inputs = result.inputs;
          row.warmupSeconds = result.warmupSeconds;
          if (result.status === 'skipped') {
            row.notes.push(`skipped (would take ${fmtDuration(result.estimatedSeconds ?? 0)})`, `gave up after its warm-up step took ${(result.warmupSeconds ?? 0).toFixed(0)} s`);
          } else {
            row.status = 'ok';
            row.imagesPerSec = result.imagesPerSec;
            row.steps = result.steps;
            row.seconds = result.seconds;
            planner.learn(engine, model, result.imagesPerSec ?? 0);
            if (plan.note) row.notes.push(plan.note);
            if (result.stoppedAtBudget) row.notes.push(`stopped at the time limit (${fmtDuration(LIMIT_FACTOR * budget).slice(1)}) before min-steps/min-seconds`);
            row.cpuShare = result.cpuShare;
            if (result.cpuShare != null && result.cpuShare < SHARED_CORE) row.notes.push(sharedNote(result.cpuShare));
            if ((result.warmupSeconds ?? 0) >= 10) row.notes.push(`warm-up ${(result.warmupSeconds ?? 0).toFixed(0)} s`);
          }
          const mb = result.microBatches ?? [batch];
          if (mb.length > 1) row.notes.push(`split into ${mb.length} micro-batches (${mb.join('+')}) to fit memory`);
          if (result.inputs === 'random') row.notes.push('random inputs');
        }
        if (row.status === 'failed') {
          if (!engineStatus.has(engine)) engineStatus.set(engine, 'FAILED (see FAILURES below)');
          failures.push(`${engine} ${model} batch ${batch}: ${row.error}`);
          progress(`${engine} ${model} batch ${batch} FAILED: ${row.error}`);
        }
        group.push(row);
      }

      let pytorch: PytorchResult = { status: 'off' };
      if (o.pytorch) {
        index++;
        if (pytorchStatus != null) {
          pytorch = { status: 'error', error: pytorchStatus };
        } else {
          const plan = planner.plan('pytorch', model, batch);
          if (!plan.run) {
            pytorch = { status: 'skipped', note: plan.note };
            progress(`[${index}/${total}] pytorch ${model} batch ${batch}: ${plan.note}`);
          } else {
            progress(`[${index}/${total}] pytorch ${model} batch ${batch}${plan.estimatedSeconds != null ? ` (expect ${fmtDuration(plan.estimatedSeconds)})` : ''}`);
            const args = [PYTORCH_SCRIPT, '--models', model, '--batches', String(batch), '--min-seconds', String(o.minSeconds),
              '--min-steps', String(plan.minSteps), '--threads', '1', '--json'];
            const hardLimit = 2 * budget + 120;
            // PyTorch's timed steps fill at least the last min-seconds of its life.
            const outcome = await runChild(PYTHON, args, pin, hardLimit, o.verbose, Math.max(1, 0.8 * o.minSeconds));
            const line = outcome.stdout.split('\n').find((l) => l.trim().startsWith('{'));
            if (outcome.code === 0 && line) {
              const r = JSON.parse(line) as { imagesPerSec: number; steps: number; seconds: number; torch: string };
              pytorch = { status: 'ok', imagesPerSec: r.imagesPerSec, steps: r.steps, seconds: r.seconds, torch: r.torch, note: plan.note, cpuShare: outcome.cpuShare };
              planner.learn('pytorch', model, r.imagesPerSec);
              pytorchStatus = null;
            } else {
              pytorch = { status: 'error', error: childFailure(outcome, hardLimit) };
            }
          }
        }
        if (pytorch.status === 'error') {
          failures.push(`pytorch ${model} batch ${batch}: ${pytorch.error}`);
          progress(`pytorch ${model} batch ${batch} FAILED: ${pytorch.error}`);
          // Do not retry a PyTorch that cannot even start.
          if (pytorchStatus == null && /No module named|not found|ENOENT/.test(pytorch.error ?? '')) {
            pytorchStatus = `unavailable (${(pytorch.error ?? '').split('\n').pop()})`;
          }
        }
      }
      if (pytorch.status === 'ok' && pytorch.cpuShare != null && pytorch.cpuShare < SHARED_CORE) {
        for (const row of group) row.notes.push(`PyTorch ${sharedNote(pytorch.cpuShare)}`);
      }
      for (const row of group) {
        row.pytorch = pytorch;
        rows.push(row);
        const q = ratio(row);
        out({
          type: 'row', model: row.model, batch: row.batch, engine: row.engine, status: row.status,
          imagesPerSec: row.imagesPerSec ?? null, steps: row.steps ?? null, seconds: row.seconds ?? null,
          warmupSeconds: row.warmupSeconds ?? null, cpuShare: row.cpuShare ?? null, microBatches: row.microBatches ?? null,
          wasmHeapBytes: row.wasmHeapBytes ?? null, inputs: row.inputs ?? null,
          pytorch: { status: pytorch.status, imagesPerSec: pytorch.imagesPerSec ?? null, steps: pytorch.steps ?? null, seconds: pytorch.seconds ?? null, torch: pytorch.torch ?? null, cpuShare: pytorch.cpuShare ?? null, note: pytorch.note ?? null, error: pytorch.error ?? null },
          ratio: q, notes: row.notes, error: row.error ?? null,
        });
      }
      if (group.length === 0 && o.pytorch) {
        out({ type: 'pytorch-only', model, batch, pytorch });
        rows.push({ model, batch, engine: '-' as EngineName, status: 'skipped', notes: ['no engine of ours ran'], pytorch });
      }
    }
  }

  const seconds = (Date.now() - t0) / 1000;
  const exitCode = failures.length > 0 ? 1 : 0;
  const torchVersion = rows.find((r) => r.pytorch.torch)?.pytorch.torch;
  if (o.json) {
    out({ type: 'summary', seconds, loadavgEnd: os.loadavg(), failures, exitCode, torch: torchVersion ?? null,
      engines: Object.fromEntries(o.engines.map((e) => [e, engineStatus.get(e) ?? 'not run'])) });
  } else {
    console.log('Engines:');
    for (const e of o.engines) console.log(`  ${e.padEnd(15)} ${engineStatus.get(e) ?? 'not run (no configuration needed it)'}`);
    console.log(`  ${'pytorch'.padEnd(15)} ${pytorchStatus ?? (torchVersion ? `torch ${torchVersion}, 1 thread (OMP_NUM_THREADS=1), random inputs` : 'not run')}`);
    console.log('');
    console.log(table(rows));
    console.log('');
    console.log('images/s = batch x timed steps / seconds; ratio = ours / PyTorch (higher is better for us).');
    if (rows.some((r) => r.pytorch.note)) console.log('* PyTorch timed with min-steps 1 to fit --max-minutes.');
    if (rows.some((r) => r.inputs === 'fashion-mnist train')) console.log('Our inputs are Fashion-MNIST training images; PyTorch uses torch.rand (speed does not depend on the values).');
    console.log(`Finished in ${fmtDuration(seconds).slice(1)}; load average at end: ${loadavg()}`);
    if (failures.length > 0) {
      console.log('');
      console.log('FAILURES:');
      for (const f of failures) console.log(`  ${f.split('\n').join('\n    ')}`);
    }
  }
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
