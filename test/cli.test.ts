import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadModel, readSavedWeights } from '../lib/train/save';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-cli-'));
const runsDir = path.join(tmp, 'runs');

function cli(args: string[], timeout?: number) {
  const result = spawnSync(process.execPath, [CLI, '--runs-dir', runsDir, ...args], { encoding: 'utf8', cwd: ROOT, timeout });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const EPOCH_LINE = /^Epoch = {1,2}\d+: Cumulative Time = \d+\.\d{3}, Epoch Time = \d+\.\d{3}, Images\/sec = \d+\.\d{2}, Validation Loss = \d+\.\d{3}, Validation Accuracy = [01]\.\d{3}$/;

describe('the fashion-mnist command', () => {
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('prints its usage with --help', () => {
    const { code, stdout } = cli(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: fashion-mnist \[options\]/);
    for (const flag of ['--epochs', '--batch-size', '--base-lr', '--momentum', '--num-gpus', '--model', '--backend', '--save']) {
      assert.ok(stdout.includes(flag), flag);
    }
  });

  const badFlags: [string[], RegExp][] = [
    [['--batch-size', '0'], /--batch-size must be a positive integer/],
    [['--epochs', '-1'], /--epochs/],
    [['--model', 'resnet50'], /--model must be one of cnn, wideresnet-dw, wideresnet/],
    [['--backend', 'tpu'], /--backend must be one of/],
    [['--train-subset', '70000'], /--train-subset must be at most 60000/],
    [['--base-lr', 'fast'], /--base-lr/],
    [['--batchsize', '32'], /unknown option --batchsize; did you mean --batch-size\?/],
  ];
  for (const [args, message] of badFlags) {
    it(`rejects ${args.join(' ')} before any work, naming the flag`, () => {
      const { code, stderr, stdout } = cli(args);
      assert.equal(code, 2);
      assert.match(stderr, message);
      assert.doesNotMatch(stdout, /Engine:/);
      assert.ok(!fs.existsSync(runsDir) || fs.readdirSync(runsDir).length === 0, 'a run folder was created');
    });
  }

  const file = path.join(tmp, 'a-file');
  const badPaths: [string[], RegExp][] = [
    [['--save', '/etc/passwd/model'], /--save \/etc\/passwd\/model: \/etc\/passwd is a file, not a folder/],
    [['--runs-dir', '/etc/passwd/x'], /--runs-dir \/etc\/passwd\/x: \/etc\/passwd is a file, not a folder/],
    [['--runs-dir', '/proc/x'], /--runs-dir \/proc\/x: cannot create \/proc\/x/],
    [['--save', file], /--save .*a-file: .* is a file; --save takes a folder/],
    [['--runs-dir', tmp, '--run-id', 'a-file'], /--run-id a-file: .*a-file exists already; continue that run with --resume a-file, or choose another name/],
  ];
  for (const [args, message] of badPaths) {
    it(`refuses ${args.join(' ')} before the data or the engine load, naming the flag and the path`, () => {
      fs.writeFileSync(file, 'not a folder');
      const { code, stderr, stdout } = cli([...args, '--epochs', '1'], 30_000);
      assert.equal(code, 1, stderr);
      assert.match(stderr, message);
      assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
      assert.doesNotMatch(stdout, /Engine:/);
    });
  }

  it('explains a missing data folder and how to fix it', () => {
    const { code, stderr } = cli(['--data-dir', path.join(tmp, 'nowhere'), '--epochs', '1']);
    assert.equal(code, 1);
    assert.match(stderr, /nowhere/);
    assert.match(stderr, /dataset-fashion-mnist|git checkout/);
  });

  it('trains, prints the course line per epoch, records the run and saves a loadable tfjs model', async () => {
    const saveDir = path.join(tmp, 'model');
    const { code, stdout, stderr } = cli([
      '--epochs', '2', '--train-subset', '640', '--val-subset', '500', '--batch-size', '32', '--seed', '7', '--save', saveDir,
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^Engine: wasm/m);
    assert.match(stdout, /^Trainable parameters: 225,034$/m);
    const epochLines = stdout.split('\n').filter((l) => l.startsWith('Epoch ='));
    assert.equal(epochLines.length, 2, stdout);
    for (const line of epochLines) assert.match(line, EPOCH_LINE);
    assert.match(epochLines[0], /^Epoch = {2}1: /);

    const runs = fs.readdirSync(runsDir);
    assert.equal(runs.length, 1);
    const metrics = fs.readFileSync(path.join(runsDir, runs[0], 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.equal(metrics.length, 2);
    assert.equal(JSON.parse(metrics[1]).epoch, 2);

    assert.ok(fs.existsSync(path.join(saveDir, 'model.json')) && fs.existsSync(path.join(saveDir, 'weights.bin')));
    const weights = readSavedWeights(saveDir);
    assert.equal([...weights.values()].reduce((n, w) => n + w.length, 0), 225_034);
    await tf.setBackend('cpu');
    const model = await loadModel(saveDir);
    const logits = model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor;
    assert.deepEqual(logits.shape, [1, 10]);
    const conv1 = model.getLayer('conv1').getWeights()[0].dataSync();
    assert.deepEqual(Array.from(conv1), Array.from(weights.get('conv1/kernel') ?? []));
  });

  it('shows progress within the epoch on a terminal (and not when piped)', () => {
    const command = `"${process.execPath}" "${CLI}" --runs-dir "${runsDir}" --epochs 1 --train-subset 320 --val-subset 100`;
    const onTerminal = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', cwd: ROOT });
    assert.equal(onTerminal.status, 0, onTerminal.stdout);
    assert.match(onTerminal.stdout, /epoch 1 {2}step 10\/10 {2}loss \d+\.\d{3} {2}\d+\.\d images\/s/);
    const piped = cli(['--epochs', '1', '--train-subset', '320', '--val-subset', '100']);
    assert.doesNotMatch(piped.stdout + piped.stderr, /step 10\/10/);
  });
});
