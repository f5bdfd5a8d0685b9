import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError, configToArgv, helpText, parseArgs } from '../lib/cli/args';
import { DEFAULT_CONFIG, type TrainConfig } from '../lib/train/config';

function usageError(argv: string[], ...fragments: string[]): void {
  assert.throws(
    () => parseArgs(argv),
    (error: unknown) => {
      assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
      assert.equal(error.name, 'UsageError');
      for (const f of fragments) assert.ok(error.message.includes(f), `'${error.message}' lacks '${f}'`);
      return true;
    },
    `argv ${JSON.stringify(argv)}`,
  );
}

test('no arguments give the default config', () => {
  assert.deepEqual(parseArgs([]), { config: DEFAULT_CONFIG, given: new Set(), help: false, version: false });
  assert.notEqual(parseArgs([]).config, DEFAULT_CONFIG, 'the default must be copied, not shared');
});

const EVERY_FLAG: [string, string, Partial<TrainConfig>][] = [
  ['--epochs', '3', { epochs: 3 }],
  ['--batch-size', '64', { batchSize: 64 }],
  ['--base-lr', '0.05', { baseLr: 0.05 }],
  ['--momentum', '0', { momentum: 0 }],
  ['--num-gpus', '4', { numGpus: 4 }],
  ['--num-nodes', '2', { numNodes: 2 }],
  ['--node-id', '1', { nodeId: 1 }],
  ['--master-addr', '10.0.0.5', { masterAddr: '10.0.0.5' }],
  ['--micro-batch', '16', { microBatch: 16 }],
  ['--device-memory-gb', '12', { deviceMemoryGb: 12 }],
  ['--dropout', '0', { dropout: 0 }],
  ['--optimizer', 'lars', { optimizer: 'lars' }],
  ['--weight-decay', '0.0005', { weightDecay: 0.0005 }],
  ['--scale-lr', 'sqrt', { scaleLr: 'sqrt' }],
  ['--warmup-start-factor', '0.25', { warmupStartFactor: 0.25 }],
  ['--master-port', '29501', { masterPort: 29501 }],
  ['--warmup-epochs', '0', { warmupEpochs: 0 }],
  ['--target-accuracy', '0.9', { targetAccuracy: 0.9 }],
  ['--patience', '5', { patience: 5 }],
  ['--model', 'wideresnet', { model: 'wideresnet' }],
  ['--backend', 'wasm', { backend: 'wasm' }],
  ['--train-subset', '60000', { trainSubset: 60000 }],
  ['--val-subset', '500', { valSubset: 500 }],
  ['--validate-every', '25', { validateEvery: 25 }],
  ['--validate-every-images', '1000', { validateEveryImages: 1000 }],
  ['--data-dir', '/tmp/fm', { dataDir: '/tmp/fm' }],
  ['--seed', '42', { seed: 42 }],
  ['--save', 'models/cnn', { save: 'models/cnn' }],
  ['--runs-dir', 'out/runs', { runsDir: 'out/runs' }],
  ['--bucket-cap-mb', '0.5', { bucketCapMb: 0.5 }],
  ['--accumulation-steps', '4', { accumulationSteps: 4 }],
  ['--simulated-link', '1gbit,0.5ms', { simulatedLink: '1gbit,0.5ms' }],
  ['--resume', 'runs/20261201-120000-cnn-ab12', { resume: 'runs/20261201-120000-cnn-ab12' }],
  ['--max-restarts', '3', { maxRestarts: 3 }],
  ['--run-id', 'job-4711.0', { runId: 'job-4711.0' }],
  ['--dist-backend', 'mpi', { distBackend: 'mpi' }],
];

/** Flags that only some optimizers read, each with one that does. */
const OPTIMIZER_SPECIFIC: [string, string, Partial<TrainConfig>, string][] = [
  ['--beta1', '0.9', { beta1: 0.9 }, 'novograd'],
  ['--beta2', '0.98', { beta2: 0.98 }, 'novograd'],
  ['--eps', '1e-6', { eps: 1e-6 }, 'lamb'],
  ['--trust-coefficient', '0.02', { trustCoefficient: 0.02 }, 'lars'],
];

for (const [flag, value, expected, optimizer] of OPTIMIZER_SPECIFIC) {
  test(`${flag} is read for --optimizer ${optimizer}`, () => {
    const want = { ...DEFAULT_CONFIG, ...expected, optimizer };
    assert.deepEqual(parseArgs(['--optimizer', optimizer, flag, value]).config, want);
    assert.deepEqual(parseArgs(['--optimizer', optimizer, `${flag}=${value}`]).config, want);
  });
}

for (const [flag, value, expected] of EVERY_FLAG) {
  test(`${flag} is read as '${flag} ${value}' and '${flag}=${value}'`, () => {
    const context = flag === '--node-id' ? ['--num-nodes', '2'] : [];
    const want = { ...DEFAULT_CONFIG, ...expected, ...(flag === '--node-id' ? { numNodes: 2 } : {}) };
    assert.deepEqual(parseArgs([...context, flag, value]).config, want);
    assert.deepEqual(parseArgs([...context, `${flag}=${value}`]).config, want);
  });
}

test('all flags together (--max-restarts is for one node, --dist-backend mpi refuses a simulated link: tested below)', () => {
  const together = EVERY_FLAG.filter(([flag]) => flag !== '--max-restarts' && flag !== '--dist-backend');
  const argv = together.flatMap(([flag, value]) => [flag, value]);
  const switches = { progress: false, syncBn: true, oversubscribe: true, overlap: false, keepCheckpoints: true };
  const want = Object.assign({ ...DEFAULT_CONFIG }, ...together.map(([, , e]) => e), switches);
  const parsed = parseArgs([...argv, '--no-progress', '--sync-bn', '--oversubscribe', '--no-overlap', '--keep-checkpoints']);
  assert.deepEqual(parsed.config, want);
  assert.deepEqual([...parsed.given].sort(), Object.keys(Object.assign({}, ...together.map(([, , e]) => e), switches)).sort());
});

test('--dist-backend mpi refuses what only the ring or the built-in launcher does', () => {
  usageError(['--dist-backend', 'mpi', '--simulated-link', '100mbit'], '--simulated-link', '--dist-backend ring');
  usageError(['--dist-backend', 'mpi', '--max-restarts', '1'], '--max-restarts', 'mpirun', '--resume');
  usageError(['--dist-backend', 'nccl'], '--dist-backend must be one of ring, mpi');
});

test('--run-id takes a folder name, not a path', () => {
  usageError(['--run-id', '../x'], '--run-id', "letters, digits, '.', '_' and '-'");
  usageError(['--run-id', '.hidden'], '--run-id');
});

test('the flags given are told apart from defaults (what --resume checks)', () => {
  assert.deepEqual([...parseArgs(['--epochs', '3', '--no-progress', '--momentum', '0.9']).given].sort(), ['epochs', 'momentum', 'progress']);
});

test('--max-restarts restarts one node\'s workers: across nodes it names the scheduler\'s requeue and --resume', () => {
  usageError(['--max-restarts', '2', '--num-nodes', '2'], '--max-restarts', '--resume');
  assert.equal(parseArgs(['--max-restarts', '0', '--num-nodes', '2']).config.maxRestarts, 0);
});

test('--master-port must be a TCP port', () => {
  usageError(['--master-port', '70000'], '--master-port', '65535');
  usageError(['--master-port', '0'], '--master-port');
});

test('--no-progress turns progress off', () => {
  assert.equal(parseArgs(['--no-progress']).config.progress, false);
});

test('a repeated flag keeps its last value', () => {
  assert.equal(parseArgs(['--epochs', '3', '--epochs=7']).config.epochs, 7);
});

test('numbers may be written in any plain decimal form', () => {
  assert.equal(parseArgs(['--base-lr', '1e-3']).config.baseLr, 0.001);
  assert.equal(parseArgs(['--base-lr', '.5']).config.baseLr, 0.5);
  assert.equal(parseArgs(['--epochs', '1e2']).config.epochs, 100);
  assert.equal(parseArgs(['--target-accuracy', '1']).config.targetAccuracy, 1);
  assert.equal(parseArgs(['--target-accuracy', '0']).config.targetAccuracy, 0);
});

test('positive integer flags reject zero, negatives, fractions and text', () => {
  for (const flag of ['--epochs', '--batch-size', '--patience', '--train-subset', '--val-subset', '--num-gpus', '--num-nodes', '--accumulation-steps']) {
    for (const bad of ['0', '-1', '3.5', 'abc', '', '1e400', 'NaN', '0x10']) {
      usageError([`${flag}=${bad}`], flag, 'must be a positive integer', `(got '${bad}')`);
    }
  }
  usageError(['--batch-size', '0'], "--batch-size must be a positive integer (got '0')");
});

test('non-negative integer flags accept 0 and reject negatives, fractions and text', () => {
  for (const flag of ['--seed', '--warmup-epochs', '--node-id']) {
    assert.doesNotThrow(() => parseArgs([flag, '0']));
    for (const bad of ['-1', '2.5', 'abc', '', '1e400']) {
      usageError([`${flag}=${bad}`], flag, 'must be a non-negative integer', `(got '${bad}')`);
    }
  }
});

test('--bucket-cap-mb takes 0 (one bucket) and fractions of a megabyte, and refuses negatives and text', () => {
  assert.equal(parseArgs(['--bucket-cap-mb', '0']).config.bucketCapMb, 0);
  assert.equal(parseArgs(['--bucket-cap-mb', '0.01']).config.bucketCapMb, 0.01);
  for (const bad of ['-1', 'abc', '', 'Infinity']) {
    usageError([`--bucket-cap-mb=${bad}`], '--bucket-cap-mb', 'must be a non-negative number of megabytes', `(got '${bad}')`);
  }
});

test('--simulated-link takes a rate with kbit, mbit or gbit and an optional latency', () => {
  assert.equal(parseArgs(['--simulated-link', '100mbit']).config.simulatedLink, '100mbit');
  for (const bad of ['100', 'fast', '0mbit', '10mbit,2']) {
    usageError([`--simulated-link=${bad}`], '--simulated-link takes a rate and an optional latency', `(got '${bad}')`);
  }
});

test('--base-lr must be positive and finite', () => {
  for (const bad of ['0', '-0.1', 'abc', '', '1e400', 'Infinity']) {
    usageError([`--base-lr=${bad}`], '--base-lr', 'positive finite number', `(got '${bad}')`);
  }
});

test('--momentum must lie in [0, 1)', () => {
  assert.equal(parseArgs(['--momentum', '0.99']).config.momentum, 0.99);
  for (const bad of ['1', '-0.1', '1.5', 'abc', '']) {
    usageError([`--momentum=${bad}`], '--momentum', '[0, 1)', `(got '${bad}')`);
  }
});

test('--target-accuracy must lie in [0, 1]', () => {
  for (const bad of ['85', '1.01', '-0.5', 'abc', '']) {
    usageError([`--target-accuracy=${bad}`], '--target-accuracy', '[0, 1]', `(got '${bad}')`);
  }
});

test('--model and --backend list their choices', () => {
  usageError(['--model', 'resnet'], '--model', 'cnn, wideresnet-dw, wideresnet', "(got 'resnet')");
  usageError(['--backend', 'webgl'], '--backend', 'auto, tensorflow-gpu, tensorflow, wasm, cpu', "(got 'webgl')");
  usageError(['--model', 'CNN'], '--model');
});

test('subsets cannot exceed the dataset', () => {
  usageError(['--train-subset', '60001'], '--train-subset', 'at most 60000', '60,000 training images');
  usageError(['--val-subset', '10001'], '--val-subset', 'at most 10000', '10,000 test images');
  assert.equal(parseArgs(['--val-subset', '10000']).config.valSubset, 10000);
});

test('path flags reject an empty value', () => {
  for (const flag of ['--data-dir', '--save', '--runs-dir']) usageError([`${flag}=`], flag, 'non-empty');
});

test('--node-id must be below --num-nodes', () => {
  usageError(['--node-id', '1'], '--node-id', '--num-nodes');
  usageError(['--num-nodes', '2', '--node-id', '2'], '--node-id', '--num-nodes');
});

test('a flag without its value is an error', () => {
  usageError(['--epochs'], '--epochs needs a value');
  usageError(['--epochs', '--batch-size', '8'], '--epochs needs a value');
  usageError(['--save', '--epochs', '3'], '--save needs a value');
});

test('a negative number is taken as a value, then rejected by its check', () => {
  usageError(['--seed', '-1'], '--seed must be a non-negative integer');
});

test('switches take no value', () => {
  usageError(['--no-progress=yes'], '--no-progress takes no value');
  usageError(['--help=1'], '--help takes no value');
  usageError(['--version=1'], '--version takes no value');
});

test('unknown flags name the flag and suggest the closest', () => {
  usageError(['--batchsize', '8'], 'unknown option --batchsize', 'did you mean --batch-size?', '--help');
  usageError(['--batch_size=8'], '--batch_size', '--batch-size');
  usageError(['--epoch', '3'], '--epoch', '--epochs');
  usageError(['--lr', '0.1'], '--lr', '--base-lr');
  usageError(['-b', '8'], 'unknown option -b', '--help');
  assert.throws(() => parseArgs(['--zzzzzzzzzzzz']), (e: Error) => !e.message.includes('did you mean'));
});

test('positional arguments are rejected', () => {
  usageError(['train'], "unexpected argument 'train'", '--help');
});

test('optimizer flags: choices, ranges, and settings the chosen optimizer would ignore', () => {
  assert.equal(parseArgs(['--optimizer', 'novograd', '--grad-averaging', '--beta1', '0.9']).config.optimizer, 'novograd');
  assert.equal(parseArgs(['--warmup-epochs', '5', '--scale-lr', 'linear', '--warmup-per-iteration']).config.warmupPerIteration, true);
  usageError(['--optimizer', 'adam'], '--optimizer', 'sgd, novograd, lamb, lars');
  usageError(['--beta1', '1'], '--beta1', '[0, 1)');
  usageError(['--weight-decay', '-0.1'], '--weight-decay');
  usageError(['--eps', '0'], '--eps');
  usageError(['--scale-lr', 'cubic'], '--scale-lr', 'linear, sqrt, none');
  usageError(['--optimizer', 'lamb', '--nesterov'], '--nesterov');
  usageError(['--device-memory-gb', '0'], '--device-memory-gb', 'positive number of gigabytes');
});

test('--help, -h and --version are reported and win over other problems', () => {
  assert.deepEqual(parseArgs(['--help']), { config: DEFAULT_CONFIG, given: new Set(), help: true, version: false });
  assert.equal(parseArgs(['-h']).help, true);
  assert.deepEqual(parseArgs(['--version']), { config: DEFAULT_CONFIG, given: new Set(), help: false, version: true });
  assert.equal(parseArgs(['--num-gpus', '8', '--bogus', '--help']).help, true);
  assert.equal(parseArgs(['--epochs', '0', '--version']).version, true);
});

test('help text lists every flag with its default', () => {
  const text = helpText();
  assert.ok(text.startsWith('Usage: fashion-mnist [options]\n'));
  assert.match(text, /Train a model on Fashion-MNIST data-parallel, like the course's PyTorch script\./);
  for (const [flag] of EVERY_FLAG) assert.match(text, new RegExp(`^  ${flag} `, 'm'), flag);
  for (const flag of ['-h, --help', '--version', '--no-progress']) assert.ok(text.includes(flag), flag);
  for (const [flag] of OPTIMIZER_SPECIFIC) assert.match(text, new RegExp(`^  ${flag} `, 'm'), flag);
  assert.equal((text.match(/\(default: /g) ?? []).length, EVERY_FLAG.length + OPTIMIZER_SPECIFIC.length);
  assert.match(text, /default: 40\)/);
  assert.match(text, /default: 0\.01\)/);
  const flat = text.replace(/\s+/g, ' ');
  assert.ok(text.includes('num-gpus x batch-size'));
  assert.ok(flat.includes('first N images of a fixed, seeded shuffle'));
  assert.ok(flat.includes('auto tries tensorflow-gpu, tensorflow, wasm, cpu in that order'));
  for (const line of text.split('\n')) assert.ok(line.length <= 80, `line too long: ${line}`);
});

test('configToArgv is the reverse of parseArgs, so the library checks settings like the command', () => {
  const configs: TrainConfig[] = [
    DEFAULT_CONFIG,
    { ...DEFAULT_CONFIG, model: 'wideresnet-dw', numGpus: 2, batchSize: 64, baseLr: 0.08, optimizer: 'novograd', beta1: 0.9, gradAveraging: true, warmupEpochs: 2, scaleLr: 'linear', trainSubset: 5000, save: 'out/m', progress: false, syncBn: true },
  ];
  for (const config of configs) assert.deepEqual(parseArgs(configToArgv(config)).config, config);
  assert.throws(() => parseArgs(configToArgv({ ...DEFAULT_CONFIG, optimizer: 'adam' as never })), /--optimizer must be one of/);
  assert.throws(() => parseArgs(configToArgv({ ...DEFAULT_CONFIG, batchSize: 0 })), /--batch-size must be a positive integer/);
});
