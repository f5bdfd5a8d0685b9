/**
 * What survives when things break, measured with the project's own command line: a worker killed
 * (SIGKILL) at random moments under --max-restarts, the launcher killed and the run continued with
 * --resume, a full disk under the runs folder (a small tmpfs; needs root), and a truncated and a
 * corrupted checkpoint. Every run is checked against one uninterrupted run of the same settings:
 * the goal is the same final weights, byte for byte, and nothing lost but the epoch in progress.
 *
 *   npm run bench:reliability [-- --trials 10 --seed 1]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listCheckpoints } from '../lib/train/checkpoint-file';
import { mulberry32 } from '../lib/train/random';
import { readRun } from '../lib/train/run-record';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const EPOCHS = 3;
const RUN = ['--model', 'cnn', '--num-gpus', '2', '--train-subset', '8192', '--val-subset', '1000', '--batch-size', '32',
  '--base-lr', '0.05', '--momentum', '0.9', '--epochs', String(EPOCHS), '--no-progress'];

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-reliability-'));
let folders = 0;
const folder = (name: string) => path.join(work, `${name}-${folders++}`);

interface Started {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
  startedAt: number;
  /** When it last printed an epoch's line (the start until then). */
  lastEpochAt: () => number;
}

function start(args: string[]): Started {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  const startedAt = Date.now();
  let out = '';
  let lastEpochAt = startedAt;
  child.stdout?.on('data', (d: Buffer) => {
    if (/^Epoch =/m.test(d.toString())) lastEpochAt = Date.now();
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited, startedAt, lastEpochAt: () => lastEpochAt };
}

async function finish(args: string[]): Promise<{ code: number | null; out: string; seconds: number }> {
  const run = start(args);
  const code = await run.exited;
  return { code, out: run.out(), seconds: (Date.now() - run.startedAt) / 1000 };
}

/** Children of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

/** Running: a process that has exited but not been reaped yet (a zombie, whose parent died) is not. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epochsPrinted = (out: string) => (out.match(/^Epoch =/gm) ?? []).length;
const weightsOf = (dir: string) => fs.readFileSync(path.join(dir, 'weights.bin'));
const onlyRun = (runsDir: string) => path.join(runsDir, fs.readdirSync(runsDir)[0]);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const range = (xs: number[]) => xs.length === 0 ? '-' : `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;

interface Row {
  scenario: string;
  trials: number;
  sameWeights: number;
  kept: string;
  lost: string;
  recovery: string;
  note: string;
}

async function main(): Promise<void> {
  const trials = option('--trials', 10);
  const random = mulberry32(option('--seed', 1));
  const rows: Row[] = [];
  console.log(`Reliability of ${RUN.join(' ')}\n${new Date().toISOString()}, ${os.cpus().length} cores, in ${work}\n`);

  const referenceSave = folder('reference-model');
  const referenceRuns = folder('runs');
  const reference = await finish([...RUN, '--runs-dir', referenceRuns, '--save', referenceSave]);
  if (reference.code !== 0) throw new Error(`the uninterrupted run failed:\n${reference.out}`);
  const expected = weightsOf(referenceSave);
  const epochSeconds = mean(readRun(onlyRun(referenceRuns)).epochs.map((e) => e.epochTime));
  console.log(`uninterrupted: ${reference.seconds.toFixed(1)} s in all\n`);

  // 1. A worker SIGKILLed at a random moment; the launcher restarts the group from the last checkpoint.
  {
    const recoveries: number[] = [];
    const lost: number[] = [];
    let same = 0;
    const kept: number[] = [];
    for (let trial = 0; trial < trials; trial++) {
      const runsDir = folder('runs');
      const save = folder('model');
      const run = start([...RUN, '--runs-dir', runsDir, '--save', save, '--max-restarts', '3']);
      // Wait for the workers, then kill one of them at a random moment of the training.
      while (childrenOf(run.child.pid ?? -1).length < 2) await sleep(20);
      while (!/Global batch/.test(run.out())) await sleep(20);
      await sleep(random() * (reference.seconds - 3) * 1000);
      const workers = childrenOf(run.child.pid ?? -1);
      const victim = Math.floor(random() * workers.length);
      const epochsBefore = epochsPrinted(run.out());
      const killedAt = Date.now();
      const lastEpochAt = run.lastEpochAt();
      process.kill(workers[victim], 'SIGKILL');
      const code = await run.exited;
      const record = readRun(onlyRun(runsDir));
      const resume = record.resumes[0];
      const ok = code === 0 && weightsOf(save).equals(expected);
      if (ok) same++;
      if (resume != null) {
        recoveries.push((Date.parse(resume.at) - killedAt) / 1000);
        kept.push(resume.fromEpoch >= epochsBefore ? 1 : 0);
        // A checkpoint written just before the kill, its line not yet printed, lost nothing.
        lost.push(resume.fromEpoch === epochsBefore ? (killedAt - lastEpochAt) / 1000 : 0);
      }
      console.log(`worker kill ${trial + 1}: rank ${victim} after ${epochsBefore} epochs, restarted from epoch ${resume?.fromEpoch ?? '?'}; ` +
        `exit ${code}, weights ${ok ? 'equal' : 'DIFFER'}, recovery ${resume ? ((Date.parse(resume.at) - killedAt) / 1000).toFixed(1) : '?'} s`);
    }
    rows.push({
      scenario: 'worker SIGKILL at a random moment, --max-restarts 3', trials, sameWeights: same,
      kept: `the last completed epoch in ${kept.reduce((a, b) => a + b, 0)} of ${trials}`,
      lost: `${range(lost)} s trained since the last checkpoint (or the start), trained again (an epoch: ${epochSeconds.toFixed(1)} s of training)`,
      recovery: `${range(recoveries)} s (mean ${mean(recoveries).toFixed(1)})`,
      note: 'kill to state loaded in the restarted workers',
    });
  }

  // 2. The launcher SIGKILLed: its workers must stop by themselves; the user continues with --resume.
  {
    let same = 0;
    let leftovers = 0;
    const recoveries: number[] = [];
    const stops: number[] = [];
    const n = Math.max(3, Math.floor(trials / 3));
    let interrupted = 0;
    let keptLast = 0;
    for (let trial = 0; trial < n; trial++) {
      const runsDir = folder('runs');
      const run = start([...RUN, '--runs-dir', runsDir]);
      // Killed after epoch 1 or 2 has ended, at a random moment of the next one.
      const after = 1 + (trial % (EPOCHS - 1));
      while (epochsPrinted(run.out()) < after) await sleep(20);
      await sleep(random() * 0.9 * epochSeconds * 1000);
      const workers = childrenOf(run.child.pid ?? -1);
      const killedAt = Date.now();
      run.child.kill('SIGKILL');
      while (workers.some(alive) && Date.now() - killedAt < 10_000) await sleep(20);
      stops.push((Date.now() - killedAt) / 1000);
      if (workers.some(alive)) leftovers++;
      const runDir = onlyRun(runsDir);
      if (readRun(runDir).end?.outcome === 'interrupted') interrupted++;
      const save = folder('model');
      const resumedAt = Date.now();
      const resumed = await finish(['--resume', runDir, '--save', save, '--no-progress']);
      const ok = resumed.code === 0 && weightsOf(save).equals(expected);
      if (ok) same++;
      const resume = readRun(runDir).resumes[0];
      if (resume) recoveries.push((Date.parse(resume.at) - resumedAt) / 1000);
      if (resume?.fromEpoch === after) keptLast++;
      console.log(`launcher kill ${trial + 1} (after epoch ${after}): workers gone after ${stops.at(-1)?.toFixed(2)} s; --resume from epoch ${resume?.fromEpoch ?? '?'}, ` +
        `weights ${ok ? 'equal' : 'DIFFER'}`);
    }
    rows.push({
      scenario: 'launcher SIGKILL, then --resume', trials: n, sameWeights: same,
      kept: `the last completed epoch in ${keptLast} of ${n}; end.json "interrupted" in ${interrupted} of ${n}`,
      lost: 'the epoch in progress', recovery: `workers stopped in ${range(stops)} s, ${leftovers} left; --resume to training ${range(recoveries)} s`,
      note: 'command start to state loaded',
    });
  }

  // 3. The disk under the runs folder fills up: the checkpoint write fails, the one before survives.
  if (process.getuid?.() === 0) {
    const mount = folder('tmpfs');
    fs.mkdirSync(mount);
    // Room for run.json, metrics and one checkpoint (1.8 MB), not for the second one's temporary file.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mount]);
    try {
      const failed = await finish([...RUN, '--runs-dir', mount]);
      const runDir = onlyRun(mount);
      const survived = listCheckpoints(runDir).map((c) => c.epoch);
      const message = /error: (.*)/.exec(failed.out)?.[1] ?? '';
      const moved = folder('moved');
      fs.cpSync(runDir, moved, { recursive: true });
      const save = folder('model');
      const resumed = await finish(['--resume', moved, '--save', save, '--no-progress']);
      const ok = resumed.code === 0 && weightsOf(save).equals(expected);
      console.log(`full disk: exit ${failed.code}: ${message}\n  checkpoints left: ${survived.join(', ')}; copied elsewhere and resumed: weights ${ok ? 'equal' : 'DIFFER'}`);
      rows.push({
        scenario: 'full disk (3 MB tmpfs) under --runs-dir', trials: 1, sameWeights: ok ? 1 : 0,
        kept: `checkpoint of epoch ${survived.join(', ')}, intact`, lost: 'the epoch whose checkpoint failed',
        recovery: 'after moving the run folder: --resume', note: `exit ${failed.code}, the error names the folder and --resume`,
      });
    } finally {
      execFileSync('umount', [mount]);
    }
  } else {
    console.log('full disk: skipped (mounting a small tmpfs needs root)');
  }

  // 4. Damaged checkpoints: found by their checksum; the one before is used when kept, else a clear refusal.
  for (const [damage, harm] of [
    ['truncated', (file: string) => fs.truncateSync(file, Math.floor(fs.statSync(file).size * 0.6))],
    ['one byte altered', (file: string) => { const b = fs.readFileSync(file); b[b.length >> 1] ^= 0x10; fs.writeFileSync(file, b); }],
  ] as const) {
    const runsDir = folder('runs');
    await finish([...RUN, '--epochs', '2', '--keep-checkpoints', '--runs-dir', runsDir]);
    const runDir = onlyRun(runsDir);
    harm(listCheckpoints(runDir)[0].file);
    const save = folder('model');
    const resumed = await finish(['--resume', runDir, '--epochs', String(EPOCHS), '--save', save, '--no-progress']);
    const ok = resumed.code === 0 && weightsOf(save).equals(expected);
    const from = /Continuing from the checkpoint of epoch (\d+)/.exec(resumed.out)?.[1];
    // The same damage with only the last checkpoint kept: refused.
    const single = folder('runs');
    await finish([...RUN, '--epochs', '2', '--runs-dir', single]);
    harm(listCheckpoints(onlyRun(single))[0].file);
    const refused = await finish(['--resume', onlyRun(single), '--epochs', String(EPOCHS), '--no-progress']);
    const refusal = /error: (.*)/.exec(refused.out)?.[1] ?? '';
    console.log(`${damage} checkpoint: with --keep-checkpoints resumed from epoch ${from}, weights ${ok ? 'equal' : 'DIFFER'}; ` +
      `only one kept: exit ${refused.code}: ${refusal}`);
    rows.push({
      scenario: `${damage} checkpoint of epoch 2`, trials: 1, sameWeights: ok ? 1 : 0,
      kept: `with --keep-checkpoints: epoch ${from} (the damaged one passed over, said so)`, lost: 'epoch 2, trained again',
      recovery: '-', note: `with the last only: refused before training (exit ${refused.code})`,
    });
  }

  console.log('\n| what broke | trials | final weights equal to the uninterrupted run | what survived | what was lost | recovery |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.scenario} | ${r.trials} | ${r.sameWeights} of ${r.trials} | ${r.kept} | ${r.lost} | ${r.recovery} (${r.note}) |`);
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
