import { parseLinkModel } from '../ddp/links';
import { wordWrap } from '../text/wrap';
import { OptimizerConfigError } from '../optim/errors';
import { checkSettingsApply, createOptimizer, OPTIMIZER_NAMES } from '../optim/factory';
import {
  BACKEND_NAMES,
  DEFAULT_CONFIG,
  MODEL_NAMES,
  optimizerSpecOf,
  type TrainConfig,
} from '../train/config';
import { SCALE_RULES } from '../train/schedule';

/** A problem with the command line; the message says what to change. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface ParsedArgs {
  config: TrainConfig;
  /** The fields the command line set (the rest are defaults): what --resume checks against the run. */
  given: Set<keyof TrainConfig>;
  help: boolean;
  version: boolean;
}

/** Joins the words that must stay on one line of the help screen. */
const GLUE = '\u00a0';

const TRAIN_IMAGES = 60_000;
const TEST_IMAGES = 10_000;

/** A flag that takes a value; `apply` checks the raw text and stores it in the config. */
interface ValueFlag {
  name: string;
  field: keyof TrainConfig;
  metavar: string;
  help: string;
  defaultText: string;
  apply(config: TrainConfig, raw: string): void;
}

function valueFlag<K extends keyof TrainConfig>(spec: {
  name: string;
  field: K;
  metavar: string;
  help: string;
  defaultText?: string;
  parse: (raw: string, flag: string) => TrainConfig[K];
}): ValueFlag {
  const flag = `--${spec.name}`;
  return {
    name: spec.name,
    field: spec.field,
    metavar: spec.metavar,
    help: spec.help,
    defaultText: spec.defaultText ?? String(DEFAULT_CONFIG[spec.field]),
    apply(config, raw) {
      config[spec.field] = spec.parse(raw, flag);
    },
  };
}

const NUMBER_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The number `raw` spells, or NaN for anything else ('', 'abc', '0x10', 'Infinity'). */
function toNumber(raw: string): number {
  return NUMBER_PATTERN.test(raw.trim()) ? Number(raw) : Number.NaN;
}

function positiveInt(raw: string, flag: string): number {
  const n = toNumber(raw);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`${flag} must be a positive integer (got '${raw}')`);
  }
  return n;
}

function nonNegativeInt(raw: string, flag: string): number {
  const n = toNumber(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new UsageError(`${flag} must be a non-negative integer (got '${raw}')`);
  }
  return n;
}

function subset(max: number, images: string) {
  return (raw: string, flag: string): number => {
    const n = positiveInt(raw, flag);
    if (n > max) {
      throw new UsageError(
        `${flag} must be at most ${max}: the dataset has ${max.toLocaleString('en-US')} ${images} (got '${raw}')`,
      );
    }
    return n;
  };
}

function choice<T extends string>(choices: readonly T[]) {
  return (raw: string, flag: string): T => {
    const found = choices.find((c) => c === raw);
    if (found === undefined) {
      throw new UsageError(`${flag} must be one of ${choices.join(', ')} (got '${raw}')`);
    }
    return found;
  };
}

function nonEmpty(raw: string, flag: string): string {
  if (raw === '') throw new UsageError(`${flag} needs a non-empty value`);
  return raw;
}

function unitInterval(raw: string, flag: string): number {
  const n = toNumber(raw);
  if (!(n >= 0 && n < 1)) throw new UsageError(`${flag} must be a number in [0, 1) (got '${raw}')`);
  return n;
}

function nonNegativeNumber(raw: string, flag: string): number {
  const n = toNumber(raw);
  if (!(n >= 0 && Number.isFinite(n))) throw new UsageError(`${flag} must be a number >= 0 (got '${raw}')`);
  return n;
}

/** A parser for a finite amount of `unit` (e.g. megabytes), positive or, with `zero`, non-negative. */
function amountOf(unit: string, zero: boolean) {
  return (raw: string, flag: string): number => {
    const n = toNumber(raw);
    if (!((zero ? n >= 0 : n > 0) && Number.isFinite(n))) {
      throw new UsageError(`${flag} must be a ${zero ? 'non-negative' : 'positive'} number of ${unit} (got '${raw}')`);
    }
    return n;
  };
}

function positiveNumber(raw: string, flag: string): number {
  const n = toNumber(raw);
  if (!(n > 0 && Number.isFinite(n))) throw new UsageError(`${flag} must be a number > 0 (got '${raw}')`);
  return n;
}

const VALUE_FLAGS: readonly ValueFlag[] = [
  valueFlag({
    name: 'epochs',
    field: 'epochs',
    metavar: 'N',
    help: 'passes over the training set',
    parse: positiveInt,
  }),
  valueFlag({
    name: 'batch-size',
    field: 'batchSize',
    metavar: 'N',
    help: `images per device per step; the global batch is ${['num-gpus', 'x', 'batch-size'].join(GLUE)}`,
    parse: positiveInt,
  }),
  valueFlag({
    name: 'base-lr',
    field: 'baseLr',
    metavar: 'LR',
    help: 'learning rate before any scaling rule',
    parse: (raw, flag) => {
      const n = toNumber(raw);
      if (!Number.isFinite(n) || n <= 0) {
        throw new UsageError(`${flag} must be a positive finite number (got '${raw}')`);
      }
      return n;
    },
  }),
  valueFlag({
    name: 'momentum',
    field: 'momentum',
    metavar: 'M',
    help: 'momentum of sgd and lars, 0 for plain SGD',
    parse: unitInterval,
  }),
  valueFlag({
    name: 'optimizer', field: 'optimizer', metavar: 'NAME',
    help: `optimizer: ${OPTIMIZER_NAMES.join(', ')} (see docs/optimizers.md)`, parse: choice(OPTIMIZER_NAMES),
  }),
  valueFlag({
    name: 'weight-decay', field: 'weightDecay', metavar: 'WD',
    help: 'weight decay (L2 for sgd, novograd, lars; decoupled for lamb)', parse: nonNegativeNumber,
  }),
  valueFlag({
    name: 'beta1', field: 'beta1', metavar: 'B', help: 'first-moment decay of novograd and lamb',
    defaultText: 'novograd 0.95, lamb 0.9', parse: unitInterval,
  }),
  valueFlag({
    name: 'beta2', field: 'beta2', metavar: 'B', help: 'second-moment decay of novograd and lamb',
    defaultText: 'novograd 0, lamb 0.999', parse: unitInterval,
  }),
  valueFlag({
    name: 'eps', field: 'eps', metavar: 'E', help: 'denominator term of novograd and lamb',
    defaultText: 'novograd 1e-8, lamb 1e-6', parse: positiveNumber,
  }),
  valueFlag({
    name: 'trust-coefficient', field: 'trustCoefficient', metavar: 'ETA', help: "LARS's trust coefficient", parse: positiveNumber,
  }),
  valueFlag({
    name: 'warmup-start-factor', field: 'warmupStartFactor', metavar: 'F',
    help: 'the warmup starts at F x the learning rate', defaultText: '1/num-gpus',
    parse: (raw, flag) => {
      const n = toNumber(raw);
      if (!(n > 0 && n <= 1)) throw new UsageError(`${flag} must be in (0, 1] (got '${raw}')`);
      return n;
    },
  }),
  valueFlag({
    name: 'scale-lr', field: 'scaleLr', metavar: 'RULE',
    help: 'scale --base-lr with the number of workers N: linear (x N, Goyal et al.), sqrt (x sqrt N), none', parse: choice(SCALE_RULES),
  }),
  valueFlag({
    name: 'num-gpus',
    field: 'numGpus',
    metavar: 'N',
    help: 'devices per node, one worker process each (a GPU with tfjs-node-gpu, else a CPU core)',
    parse: positiveInt,
  }),
  valueFlag({
    name: 'num-nodes',
    field: 'numNodes',
    metavar: 'N',
    help: 'machines taking part; start the command on each with its --node-id and the same --master-addr',
    parse: positiveInt,
  }),
  valueFlag({
    name: 'node-id',
    field: 'nodeId',
    metavar: 'I',
    help: "this machine's index, 0 to num-nodes - 1",
    parse: nonNegativeInt,
  }),
  valueFlag({
    name: 'warmup-epochs',
    field: 'warmupEpochs',
    metavar: 'N',
    help: 'epochs of linear warmup from 1/num-gpus of the (scaled) learning rate, like PyTorch LinearLR(start_factor=1/N)',
    parse: nonNegativeInt,
  }),
  valueFlag({
    name: 'target-accuracy',
    field: 'targetAccuracy',
    metavar: 'A',
    help: 'stop early once the last --patience validation accuracies all reach this',
    parse: (raw, flag) => {
      const n = toNumber(raw);
      if (!(n >= 0 && n <= 1)) {
        throw new UsageError(`${flag} must be a fraction in [0, 1], e.g. 0.85 (got '${raw}')`);
      }
      return n;
    },
  }),
  valueFlag({
    name: 'patience',
    field: 'patience',
    metavar: 'N',
    help: 'validation accuracies in a row at --target-accuracy needed to stop early',
    parse: positiveInt,
  }),
  valueFlag({
    name: 'model',
    field: 'model',
    metavar: 'NAME',
    help: `model to train: ${MODEL_NAMES.join(', ')}`,
    parse: choice(MODEL_NAMES),
  }),
  valueFlag({
    name: 'backend',
    field: 'backend',
    metavar: 'NAME',
    help: `TensorFlow.js engine: ${BACKEND_NAMES.join(', ')}; auto tries ${BACKEND_NAMES.filter((b) => b !== 'auto').join(', ')} in that order`,
    parse: choice(BACKEND_NAMES),
  }),
  valueFlag({
    name: 'train-subset',
    field: 'trainSubset',
    metavar: 'N',
    help: 'train on the first N images of a fixed, seeded shuffle of the training set',
    defaultText: `all ${TRAIN_IMAGES.toLocaleString('en-US')}`,
    parse: subset(TRAIN_IMAGES, 'training images'),
  }),
  valueFlag({
    name: 'val-subset',
    field: 'valSubset',
    metavar: 'N',
    help: 'validate on the first N test images',
    defaultText: `all ${TEST_IMAGES.toLocaleString('en-US')}`,
    parse: subset(TEST_IMAGES, 'test images'),
  }),
  valueFlag({
    name: 'validate-every',
    field: 'validateEvery',
    metavar: 'STEPS',
    help: 'also validate every STEPS steps within an epoch, on the first --validate-every-images validation images (time spent validating is not training time)',
    defaultText: 'at the end of each epoch only',
    parse: positiveInt,
  }),
  valueFlag({
    name: 'validate-every-images',
    field: 'validateEveryImages',
    metavar: 'N',
    help: 'validation images of the validations within an epoch',
    parse: positiveInt,
  }),
  valueFlag({
    name: 'data-dir',
    field: 'dataDir',
    metavar: 'DIR',
    help: 'folder with the four Fashion-MNIST IDX files',
    defaultText: 'data/',
    parse: nonEmpty,
  }),
  valueFlag({
    name: 'seed',
    field: 'seed',
    metavar: 'N',
    help: 'random seed',
    parse: nonNegativeInt,
  }),
  valueFlag({
    name: 'save',
    field: 'save',
    metavar: 'DIR',
    help: 'save the trained model to DIR in TensorFlow.js format',
    defaultText: 'do not save',
    parse: nonEmpty,
  }),
  valueFlag({
    name: 'dropout',
    field: 'dropout',
    metavar: 'RATE',
    help: "dropout rate inside the WideResNets' blocks",
    parse: (raw, flag) => {
      const n = toNumber(raw);
      if (!(n >= 0 && n < 1)) throw new UsageError(`${flag} must be a rate in [0, 1) (got '${raw}')`);
      return n;
    },
  }),
  valueFlag({
    name: 'micro-batch',
    field: 'microBatch',
    metavar: 'N',
    help: 'split each step into passes of at most N images and sum their gradients',
    defaultText: "what fits the engine's memory",
    parse: positiveInt,
  }),
  valueFlag({
    name: 'device-memory-gb',
    field: 'deviceMemoryGb',
    metavar: 'GB',
    help: "memory each worker's activations may take, which sets the largest pass (see --micro-batch); from the device: 70% of a GPU's (nvidia-smi), half the RAM over the machine's workers, at most 2 GB on wasm",
    defaultText: 'from the device',
    parse: amountOf('gigabytes', false),
  }),
  valueFlag({
    name: 'bucket-cap-mb',
    field: 'bucketCapMb',
    metavar: 'MB',
    help: "gradient buckets of at most MB megabytes, each all-reduced as soon as the backward pass has filled it (PyTorch's bucket_cap_mb); 0: one bucket after the whole backward pass",
    parse: amountOf('megabytes', true),
  }),
  valueFlag({
    name: 'accumulation-steps',
    field: 'accumulationSteps',
    metavar: 'K',
    help: 'K forward/backward passes of --batch-size images per optimizer step, gradients summed locally and all-reduced on the last (PyTorch\'s no_sync); global batch = devices x batch size x K',
    parse: positiveInt,
  }),
  valueFlag({
    name: 'simulated-link',
    field: 'simulatedLink',
    metavar: 'RATE[,LATENCY]',
    help: "make every message between workers take as long as on this link (e.g. 100mbit, 1gbit,0.5ms): a simulated link, to see what hiding communication buys on one machine",
    defaultText: 'none',
    parse: (raw, flag) => {
      try {
        parseLinkModel(raw, flag);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      return raw;
    },
  }),
  valueFlag({
    name: 'dist-backend',
    field: 'distBackend',
    metavar: 'NAME',
    help: "what carries the collectives: ring (this project's ring all-reduce over TCP, shared memory on one machine) or mpi (the Open MPI the job was started with: run the command under mpirun, which starts the ranks; the built-in launcher refuses it)",
    parse: choice(['ring', 'mpi'] as const),
  }),
  valueFlag({
    name: 'master-addr',
    field: 'masterAddr',
    metavar: 'HOST',
    help: "rank 0's address, where the workers meet (like torchrun's MASTER_ADDR)",
    defaultText: '127.0.0.1',
    parse: nonEmpty,
  }),
  valueFlag({
    name: 'master-port',
    field: 'masterPort',
    metavar: 'PORT',
    help: "rank 0's rendezvous port",
    defaultText: 'a free port on one node, 29500 across nodes',
    parse: (raw, flag) => {
      const n = positiveInt(raw, flag);
      if (n > 65535) throw new UsageError(`${flag} must be a TCP port, 1 to 65535 (got '${raw}')`);
      return n;
    },
  }),
  valueFlag({
    name: 'run-id',
    field: 'runId',
    metavar: 'NAME',
    help: "name the run's folder under --runs-dir (letters, digits, . _ -), e.g. a scheduler's job id, so that a requeued job can find it with --resume NAME",
    defaultText: 'date-model-random',
    parse: (raw, flag) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(raw)) throw new UsageError(`${flag} takes letters, digits, '.', '_' and '-', starting with a letter or digit (got '${raw}')`);
      return raw;
    },
  }),
  valueFlag({
    name: 'resume',
    field: 'resume',
    metavar: 'RUN',
    help: "continue a run (its folder, or its id under --runs-dir) from its last checkpoint, with its settings; --epochs may extend it, a flag that would change what it computes is refused",
    defaultText: 'a new run',
    parse: nonEmpty,
  }),
  valueFlag({
    name: 'max-restarts',
    field: 'maxRestarts',
    metavar: 'N',
    help: "when a worker dies, stop the others and restart all of them from the last checkpoint, up to N times (torchrun's --max-restarts; the built-in launcher on one node)",
    parse: nonNegativeInt,
  }),
  valueFlag({
    name: 'runs-dir',
    field: 'runsDir',
    metavar: 'DIR',
    help: 'parent folder of the per-run records (DIR/<run-id>/)',
    parse: nonEmpty,
  }),
];

const SWITCHES = [
  { names: ['-h', '--help'], help: 'show this help and exit' },
  { names: ['--version'], help: 'show the version and exit' },
  { names: ['--no-progress'], help: 'hide the in-epoch progress display' },
  { names: ['--sync-bn'], help: "average BatchNorm's batch statistics across workers (PyTorch's SyncBatchNorm)" },
  { names: ['--nesterov'], help: 'Nesterov momentum (sgd)' },
  { names: ['--grad-averaging'], help: "novograd's gradient averaging (the course sets it)" },
  { names: ['--amsgrad'], help: 'novograd normalizes by the largest second moment so far' },
  { names: ['--warmup-per-iteration'], help: 'raise the learning rate every step of the warmup (Goyal et al.), not every epoch (the course)' },
  { names: ['--no-overlap'], help: 'start the gradient buckets\' all-reduces after the backward pass, not during it (to measure what overlap buys)' },
  { names: ['--oversubscribe'], help: 'allow more workers than devices (teaching only: they share cores, so the speed-up is not real)' },
  { names: ['--keep-checkpoints'], help: "keep every epoch's checkpoint in the run folder, not only the last" },
] as const;

const KNOWN_FLAGS: readonly string[] = [
  ...SWITCHES.flatMap((s) => (s.names as readonly string[]).filter((n) => n.startsWith('--'))),
  ...VALUE_FLAGS.map((f) => `--${f.name}`),
];

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The known flag `flag` was most likely meant to be, if any is close enough. */
function closestFlag(flag: string): string | undefined {
  const typed = flag.toLowerCase().replace(/^-+/, '--');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const known of KNOWN_FLAGS) {
    const d = editDistance(typed, known);
    if (d < bestDistance) [best, bestDistance] = [known, d];
  }
  const bare = typed.slice(2);
  if (bestDistance <= Math.max(2, Math.floor(bare.length / 3))) return best;
  return bare.length >= 2 ? KNOWN_FLAGS.find((k) => k.includes(bare)) : undefined;
}

function unknownFlag(flag: string): UsageError {
  const guess = closestFlag(flag);
  const hint = guess === undefined ? '' : `; did you mean ${guess}?`;
  return new UsageError(`unknown option ${flag}${hint} (see --help for all options)`);
}

function isFlagLike(token: string): boolean {
  return token.startsWith('--') || token === '-h';
}

/**
 * Reads the command line (without `node` and the script) into a checked config.
 * Later values of a repeated flag win. When --help or --version is given,
 * nothing else is checked and the config is the default.
 */
export function parseArgs(argv: string[]): ParsedArgs {
  let help = false;
  let version = false;
  const switches = {
    progress: DEFAULT_CONFIG.progress, syncBn: DEFAULT_CONFIG.syncBn, oversubscribe: DEFAULT_CONFIG.oversubscribe,
    overlap: DEFAULT_CONFIG.overlap,
    nesterov: DEFAULT_CONFIG.nesterov, gradAveraging: DEFAULT_CONFIG.gradAveraging, amsgrad: DEFAULT_CONFIG.amsgrad,
    warmupPerIteration: DEFAULT_CONFIG.warmupPerIteration, keepCheckpoints: DEFAULT_CONFIG.keepCheckpoints,
  };
  const given = new Set<keyof TrainConfig>();
  const raw = new Map<ValueFlag, string>();
  let firstError: UsageError | undefined;
  const fail = (error: UsageError) => {
    firstError ??= error;
  };

  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (!token.startsWith('-') || token === '-' || token === '--') {
      fail(new UsageError(`unexpected argument '${token}': fashion-mnist takes only options (see --help)`));
      continue;
    }
    const eq = token.indexOf('=');
    const name = eq === -1 ? token : token.slice(0, eq);
    const inline = eq === -1 ? undefined : token.slice(eq + 1);

    const isSwitch = SWITCHES.some((s) => (s.names as readonly string[]).includes(name));
    if (isSwitch) {
      const switchField = SWITCH_FIELDS.find(([, flagName]) => flagName === name)?.[0];
      if (switchField !== undefined) given.add(switchField);
      if (inline !== undefined) {
        fail(new UsageError(`${name} takes no value (got '${token}')`));
      } else if (name === '-h' || name === '--help') {
        help = true;
      } else if (name === '--version') {
        version = true;
      } else if (name === '--no-progress') {
        switches.progress = false;
      } else if (name === '--sync-bn') {
        switches.syncBn = true;
      } else if (name === '--no-overlap') {
        switches.overlap = false;
      } else if (name === '--nesterov') {
        switches.nesterov = true;
      } else if (name === '--grad-averaging') {
        switches.gradAveraging = true;
      } else if (name === '--amsgrad') {
        switches.amsgrad = true;
      } else if (name === '--warmup-per-iteration') {
        switches.warmupPerIteration = true;
      } else if (name === '--keep-checkpoints') {
        switches.keepCheckpoints = true;
      } else {
        switches.oversubscribe = true;
      }
      continue;
    }

    const flag = name.startsWith('--') ? VALUE_FLAGS.find((f) => `--${f.name}` === name) : undefined;
    if (flag === undefined) {
      fail(unknownFlag(name));
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || isFlagLike(next)) {
        fail(new UsageError(`${name} needs a value, e.g. ${name} ${flag.metavar}`));
        continue;
      }
      value = next;
      i++;
    }
    raw.set(flag, value);
    given.add(flag.field);
  }

  if (help || version) return { config: { ...DEFAULT_CONFIG }, given: new Set(), help, version };
  if (firstError !== undefined) throw firstError;

  const config: TrainConfig = { ...DEFAULT_CONFIG, ...switches };
  for (const flag of VALUE_FLAGS) {
    const value = raw.get(flag);
    if (value !== undefined) flag.apply(config, value);
  }
  if (config.nodeId >= config.numNodes) {
    throw new UsageError(
      `--node-id must be less than --num-nodes, as nodes count from 0 (got --node-id ${config.nodeId} with --num-nodes ${config.numNodes})`,
    );
  }
  if (config.distBackend === 'mpi' && config.simulatedLink != null) {
    throw new UsageError('--simulated-link slows the ring\'s messages down; MPI\'s are its own: use it with --dist-backend ring');
  }
  if (config.distBackend === 'mpi' && config.maxRestarts > 0) {
    throw new UsageError('--max-restarts restarts the built-in launcher\'s workers; under mpirun, rerun the job with --resume RUN');
  }
  if (config.maxRestarts > 0 && config.numNodes > 1) {
    throw new UsageError('--max-restarts restarts the workers of one node (--num-nodes 1); across nodes, ' +
      "let the scheduler restart the job (a SLURM requeue) with --resume RUN, the run's folder on a filesystem every node sees");
  }
  try {
    const spec = optimizerSpecOf(config);
    createOptimizer(spec).dispose();
    checkSettingsApply(spec);
  } catch (e) {
    if (e instanceof OptimizerConfigError) throw new UsageError(e.message);
    throw e;
  }
  return { config, given, help, version };
}

const HELP_WIDTH = 80;
const HELP_COLUMN = 24;

function wrap(text: string, width: number): string[] {
  return wordWrap(text, width).map((l) => l.replaceAll(GLUE, ' '));
}

function helpEntry(left: string, text: string): string {
  const [first = '', ...rest] = wrap(text, HELP_WIDTH - HELP_COLUMN);
  const indent = ' '.repeat(HELP_COLUMN);
  const head =
    left.length + 2 < HELP_COLUMN ? `  ${left.padEnd(HELP_COLUMN - 2)}${first}` : `  ${left}\n${indent}${first}`;
  return [head, ...rest.map((l) => indent + l)].join('\n');
}

/** The usage screen for --help, argparse style. */
export function helpText(): string {
  const [help, version, ...otherSwitches] = SWITCHES.map((s) => helpEntry(s.names.join(', '), s.help));
  const values = VALUE_FLAGS.map((f) => {
    const defaultText = `(default: ${f.defaultText})`.replaceAll(' ', GLUE);
    return helpEntry(`--${f.name} ${f.metavar}`, `${f.help} ${defaultText}`);
  });
  return [
    'Usage: fashion-mnist [options]',
    '',
    "Train a model on Fashion-MNIST data-parallel, like the course's PyTorch script.",
    '',
    'Options:',
    help,
    version,
    ...values,
    ...otherSwitches,
    '',
  ].join('\n');
}

/**
 * The command line that gives `config` (the reverse of parseArgs), so that
 * the library and notebooks check settings with exactly the command's rules.
 */
/** The switches that set a configuration field, and the value each sets. */
const SWITCH_FIELDS: readonly [keyof TrainConfig, string, boolean][] = [
  ['progress', '--no-progress', false], ['syncBn', '--sync-bn', true], ['oversubscribe', '--oversubscribe', true],
  ['overlap', '--no-overlap', false], ['nesterov', '--nesterov', true],
  ['gradAveraging', '--grad-averaging', true], ['amsgrad', '--amsgrad', true], ['warmupPerIteration', '--warmup-per-iteration', true],
  ['keepCheckpoints', '--keep-checkpoints', true],
];

/** The configuration field a flag sets (`--num-gpus` -> numGpus), or null for flags that set none. */
export function flagField(flag: string): keyof TrainConfig | null {
  const value = VALUE_FLAGS.find((f) => `--${f.name}` === flag);
  if (value) return value.field;
  return SWITCH_FIELDS.find(([, name]) => name === flag)?.[0] ?? null;
}

/** The flag that sets a configuration field (numGpus -> --num-gpus; a switch by its name). */
export function fieldFlag(field: keyof TrainConfig): string {
  const value = VALUE_FLAGS.find((f) => f.field === field);
  if (value) return `--${value.name}`;
  return SWITCH_FIELDS.find(([f]) => f === field)?.[1] ?? String(field);
}

export function configToArgv(config: TrainConfig): string[] {
  const argv: string[] = [];
  for (const flag of VALUE_FLAGS) {
    const value = config[flag.field];
    if (value !== null && value !== DEFAULT_CONFIG[flag.field]) argv.push(`--${flag.name}`, String(value));
  }
  for (const [field, name, whenOn] of SWITCH_FIELDS) if (config[field] === whenOn && whenOn !== DEFAULT_CONFIG[field]) argv.push(name);
  return argv;
}
