import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../lib/backend/select';
import { OptimizerConfigError } from '../lib/optim/errors';
import {
  checkSettingsApply, createOptimizer, DEFAULT_OPTIMIZER_SPEC, OPTIMIZER_NAMES, resolveOptimizerSpec, type OptimizerSpec,
} from '../lib/optim/factory';
import { Lamb } from '../lib/optim/lamb';
import { Lars } from '../lib/optim/lars';
import { NovoGrad } from '../lib/optim/novograd';
import type { Optimizer } from '../lib/optim/optimizer';
import {
  checkReferenceFile, DEFAULT_TOLERANCE, parseReferenceFile, ReferenceFormatError, runReferenceCase,
} from '../lib/optim/reference';
import { Sgd } from '../lib/optim/sgd';

const ROOT = path.resolve(__dirname, '..', '..');
/** Optional extra check: the shared reference file beside the checkout, when there is one. */
const SHARED = path.resolve(ROOT, '..', 'shared', 'reference', 'optimizers.json');
const SHARED_SKIP = fs.existsSync(SHARED)
  ? false
  : `${SHARED} not found (an optional extra check beside the checkout; test/fixtures/optimizers-torch.json covers the same kinds of cases)`;
/** SGD, SGD + LinearLR and NovoGrad from torch and torch_optimizer: bench/reference/torch_references.py. */
const TORCH_FIXTURE = path.join(ROOT, 'test', 'fixtures', 'optimizers-torch.json');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'optimizers-lamb-lars.json');
const CHECKER = path.join(ROOT, 'dist', 'bench', 'check-optimizers.js');

const readJson = (file: string): unknown => JSON.parse(fs.readFileSync(file, 'utf8'));
const spec = (overrides: Partial<OptimizerSpec>): OptimizerSpec => ({ ...DEFAULT_OPTIMIZER_SPEC, ...overrides });

/** Every optimizer, with the options that add state or branches. */
const VARIANTS: OptimizerSpec[] = [
  spec({ name: 'sgd', momentum: 0 }),
  spec({ name: 'sgd', momentum: 0.9, weightDecay: 1e-3, nesterov: true }),
  spec({ name: 'novograd', gradAveraging: true }),
  spec({ name: 'novograd', beta2: 0.98, weightDecay: 1e-3, amsgrad: true }),
  spec({ name: 'lamb', weightDecay: 0.01 }),
  spec({ name: 'lars', weightDecay: 5e-4 }),
];

function randomParams(seed: number): tf.Variable[] {
  return tf.tidy(() => [[3, 3, 1, 4], [4], [5, 2]].map((shape, i) => tf.variable(tf.randomNormal(shape, 0, 1, 'float32', seed + i), false)));
}

function randomGrads(seed: number): tf.Tensor[] {
  return [[3, 3, 1, 4], [4], [5, 2]].map((shape, i) => tf.randomNormal(shape, 0, 0.1, 'float32', 1000 + seed * 7 + i));
}

function bytes(tensors: tf.Tensor[]): Buffer[] {
  return tensors.map((t) => Buffer.from((t.dataSync() as Float32Array).buffer.slice(0)));
}

describe('optimizers against float64 references (cpu engine, float32)', () => {
  before(async () => {
    await initEngine('cpu');
  });

  it("matches every case of this project's torch and torch_optimizer fixture", () => {
    const results = checkReferenceFile(parseReferenceFile(readJson(TORCH_FIXTURE)));
    assert.equal(results.length, 6);
    for (const r of results) assert.ok(r.passed, `${r.name}: ${r.worstToTolerance} x tolerance at ${JSON.stringify(r.worst)}`);
    assert.deepEqual(new Set(results.map((r) => r.optimizer)), new Set(['sgd', 'novograd']));
  });

  it('matches every case of the shared reference file (when present)', { skip: SHARED_SKIP }, () => {
    const file = parseReferenceFile(readJson(SHARED));
    const results = checkReferenceFile(file);
    assert.ok(results.length >= 5);
    for (const r of results) assert.ok(r.passed, `${r.name}: ${r.worstToTolerance} x tolerance at ${JSON.stringify(r.worst)}`);
    assert.deepEqual(new Set(results.map((r) => r.optimizer)), new Set(['sgd', 'novograd']));
  });

  it("matches this project's LAMB, LARS, SGD and NovoGrad fixtures", () => {
    const results = checkReferenceFile(parseReferenceFile(readJson(FIXTURE)));
    assert.equal(results.length, 8);
    for (const r of results) assert.ok(r.passed, `${r.name}: ${r.worstToTolerance} x tolerance at ${JSON.stringify(r.worst)}`);
    assert.deepEqual(new Set(results.map((r) => r.optimizer)), new Set(OPTIMIZER_NAMES));
  });

  it('fails a case whose expected value is moved just past the tolerance, and names the element', () => {
    const json = readJson(FIXTURE) as { cases: { expected: number[][][] }[] };
    const file = parseReferenceFile(json);
    for (const [caseIndex, step, tensor, index] of [[0, 7, 0, 3], [2, 4, 2, 5], [6, 0, 1, 1]] as const) {
      const c = file.cases[caseIndex];
      const original = c.expected[step][tensor][index];
      const tolerance = Math.max(DEFAULT_TOLERANCE.atol, DEFAULT_TOLERANCE.rtol * Math.abs(original));
      const moved = { ...c, expected: structuredClone(c.expected) };
      moved.expected[step][tensor][index] = original + 1.5 * tolerance;
      const result = runReferenceCase(file, moved);
      assert.equal(result.passed, false, `${c.name} still passes`);
      assert.deepEqual([result.worst?.step, result.worst?.tensor, result.worst?.index], [step, tensor, index]);
      assert.ok(runReferenceCase(file, c).passed);
    }
  });

  it('refuses malformed files with a message that says where', () => {
    const good = readJson(FIXTURE) as Record<string, unknown> & { cases: Record<string, unknown>[] };
    const broken = (change: (j: typeof good) => void) => {
      const copy = structuredClone(good);
      change(copy);
      return () => parseReferenceFile(copy);
    };
    assert.throws(() => parseReferenceFile([]), ReferenceFormatError);
    assert.throws(broken((j) => { j.cases[0].optimizer = 'adam'; }), /unknown optimizer 'adam'/);
    assert.throws(broken((j) => { (j.cases[0].hyper as Record<string, unknown>).beta3 = 0.5; }), /unknown hyperparameter 'beta3'/);
    assert.throws(broken((j) => { (j.cases[0].hyper as Record<string, unknown>).beta1 = 1.5; }), /--beta1 must be in \[0, 1\) \(got 1.5\)/);
    assert.throws(broken((j) => { (j.cases[0].hyper as Record<string, unknown>).amsgrad = 1; }), /'amsgrad' must be a boolean/);
    assert.throws(broken((j) => { (j.cases[0].expected as unknown[]).pop(); }), /expected must hold one entry per step/);
    assert.throws(broken((j) => { (j.params as number[][])[0].pop(); }), /params\[0\] has 11 numbers, expected 12/);
    assert.throws(broken((j) => { j.cases[0].lr = [...(j.cases[0].lr as number[]), 0.1]; }), /9 learning rates but only 8 gradient steps/);
  });

  it('the checker exits 0 on a matching file, 1 on a mismatch and 2 on a malformed file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'check-optimizers-'));
    try {
      const json = readJson(FIXTURE) as { cases: { expected: number[][][] }[] };
      json.cases[3].expected[5][0][0] += 1e-3;
      const mismatch = path.join(dir, 'mismatch.json');
      fs.writeFileSync(mismatch, JSON.stringify(json));
      const malformed = path.join(dir, 'malformed.json');
      fs.writeFileSync(malformed, JSON.stringify({ ...json, cases: [{ ...json.cases[0], optimizer: 'adamw' }] }));
      const run = (file: string) => spawnSync(process.execPath, [CHECKER, file], { encoding: 'utf8' });
      const ok = run(FIXTURE);
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /PASS {2}lamb defaults .* max abs error \d\.\d\de-\d+, max rel error/);
      const bad = run(mismatch);
      assert.equal(bad.status, 1, bad.stdout + bad.stderr);
      assert.match(bad.stdout, /FAIL {2}lars weight decay .*\n +step 5, tensor 0, element 0: got/);
      const malformedRun = run(malformed);
      assert.equal(malformedRun.status, 2);
      assert.match(malformedRun.stderr, /unknown optimizer 'adamw'/);
      assert.equal(run(path.join(dir, 'missing.json')).status, 2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('optimizer hyperparameters', () => {
  const rejects = (make: () => unknown, message: string) => {
    assert.throws(make, (e: unknown) => e instanceof OptimizerConfigError && e.message === message);
  };

  it('names the command-line flag of a bad value', () => {
    rejects(() => new Sgd({ momentum: 1.5 }), '--momentum must be in [0, 1) (got 1.5)');
    rejects(() => new Sgd({ momentum: -0.1 }), '--momentum must be in [0, 1) (got -0.1)');
    rejects(() => new Sgd({ momentum: Number.NaN }), '--momentum must be in [0, 1) (got NaN)');
    rejects(() => new Sgd({ momentum: 0.9, weightDecay: -1 }), '--weight-decay must be >= 0 (got -1)');
    rejects(() => new Sgd({ momentum: 0, nesterov: true }), '--nesterov needs --momentum > 0 (got 0)');
    rejects(() => new NovoGrad({ beta1: 1 }), '--beta1 must be in [0, 1) (got 1)');
    rejects(() => new NovoGrad({ beta2: -0.5 }), '--beta2 must be in [0, 1) (got -0.5)');
    rejects(() => new NovoGrad({ eps: 0 }), '--eps must be > 0 (got 0)');
    rejects(() => new NovoGrad({ weightDecay: Infinity }), '--weight-decay must be >= 0 (got Infinity)');
    rejects(() => new Lamb({ beta2: 1 }), '--beta2 must be in [0, 1) (got 1)');
    rejects(() => new Lamb({ eps: -1e-8 }), '--eps must be > 0 (got -1e-8)');
    rejects(() => new Lars({ momentum: 1 }), '--momentum must be in [0, 1) (got 1)');
    rejects(() => new Lars({ trustCoefficient: 0 }), '--trust-coefficient must be > 0 (got 0)');
    rejects(() => createOptimizer(spec({ name: 'adam' as OptimizerSpec['name'] })), "--optimizer must be one of sgd, novograd, lamb, lars (got 'adam')");
    rejects(() => createOptimizer(spec({ name: 'lamb', beta1: 2 })), '--beta1 must be in [0, 1) (got 2)');
  });

  it('fills in each optimizer\'s own defaults and refuses settings that would be ignored', () => {
    assert.deepEqual(
      [resolveOptimizerSpec(spec({ name: 'novograd' }))].map((s) => [s.beta1, s.beta2, s.eps, s.gradAveraging]),
      [[0.95, 0, 1e-8, false]],
    );
    const lamb = resolveOptimizerSpec(spec({ name: 'lamb', beta2: 0.99 }));
    assert.deepEqual([lamb.beta1, lamb.beta2, lamb.eps], [0.9, 0.99, 1e-6]);
    assert.equal(resolveOptimizerSpec(spec({ name: 'sgd' })).beta1, null);
    checkSettingsApply(spec({ name: 'novograd', gradAveraging: true, amsgrad: true, weightDecay: 0.1 }));
    checkSettingsApply(spec({ name: 'lars', momentum: 0.5 }));
    assert.throws(() => checkSettingsApply(spec({ name: 'lamb', nesterov: true })), /--nesterov has no effect on --optimizer lamb \(it applies to sgd\)/);
    assert.throws(() => checkSettingsApply(spec({ name: 'sgd', beta1: 0.9 })), /--beta1 has no effect on --optimizer sgd \(it applies to novograd, lamb\)/);
    assert.throws(() => checkSettingsApply(spec({ name: 'novograd', momentum: 0.5 })), /--momentum has no effect on --optimizer novograd/);
    assert.equal(new Sgd({ momentum: 0.9 }).describe(), 'sgd (momentum 0.9)');
    assert.equal(createOptimizer(spec({ name: 'novograd', gradAveraging: true })).describe?.(), 'novograd (beta1 0.95, beta2 0, eps 1e-8, grad averaging)');
  });
});

describe('optimizer state and memory (cpu engine)', () => {
  before(async () => {
    await initEngine('cpu');
  });

  const run = (optimizer: Optimizer, steps: number, params: tf.Variable[]) => {
    for (let k = 0; k < steps; k++) {
      const grads = randomGrads(k);
      optimizer.step(params, grads, 0.05 + 0.01 * k);
      tf.dispose(grads);
    }
  };

  for (const variant of VARIANTS) {
    const label = JSON.stringify(Object.fromEntries(Object.entries(variant).filter(([k, v]) => k === 'name' || v !== DEFAULT_OPTIMIZER_SPEC[k as keyof OptimizerSpec])));

    it(`${label}: two optimizers fed the same gradients hold bit-identical state and parameters`, () => {
      const [a, b] = [createOptimizer(variant), createOptimizer(variant)];
      const [pa, pb] = [randomParams(1), randomParams(1)];
      run(a, 5, pa);
      run(b, 5, pb);
      assert.deepEqual(bytes(a.state()), bytes(b.state()));
      assert.deepEqual(bytes(pa), bytes(pb));
      if (variant.name !== 'sgd' || variant.momentum > 0) assert.ok(a.state().length >= 3);
      a.dispose();
      b.dispose();
      tf.dispose([...pa, ...pb]);
    });

    it(`${label}: keeps only its state tensors, the same number every step, and frees them on dispose`, () => {
      const baseline = tf.memory().numTensors;
      const optimizer = createOptimizer(variant);
      const params = randomParams(2);
      run(optimizer, 1, params);
      const afterFirst = tf.memory().numTensors;
      assert.equal(afterFirst, baseline + params.length + optimizer.state().length);
      run(optimizer, 4, params);
      assert.equal(tf.memory().numTensors, afterFirst);
      optimizer.dispose();
      assert.deepEqual(optimizer.state(), []);
      tf.dispose(params);
      assert.equal(tf.memory().numTensors, baseline);
    });
  }

  it('refuses a step whose gradients do not match the parameters or whose learning rate is bad', () => {
    const optimizer = createOptimizer(spec({ name: 'lamb' }));
    const params = randomParams(3);
    const grads = randomGrads(3);
    assert.throws(() => optimizer.step(params, grads.slice(1), 0.1), /2 gradients for 3 parameters/);
    assert.throws(() => optimizer.step(params, grads, Number.NaN), /learning rate must be finite and >= 0 \(got NaN\)/);
    tf.dispose([...params, ...grads]);
    optimizer.dispose();
  });
});

