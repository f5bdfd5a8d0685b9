import * as tf from '@tensorflow/tfjs';
import { OptimizerConfigError } from './errors';
import { createOptimizer, DEFAULT_OPTIMIZER_SPEC, OPTIMIZER_NAMES, type OptimizerSpec } from './factory';

/**
 * Reference trajectories (e.g. the project's test/fixtures/optimizers-torch.json,
 * or ../shared/reference/optimizers.json beside the checkout): each case
 * starts from `params` and applies `grads[k]` with learning rate `lr[k]` at
 * step k; `expected[k]` holds every parameter after step k. Tensors are flat
 * row-major lists, `shapes` gives their shapes.
 */
export interface ReferenceFile {
  about?: string;
  shapes: number[][];
  params: number[][];
  grads: number[][][];
  cases: ReferenceCase[];
}

export interface ReferenceCase {
  name: string;
  optimizer: string;
  hyper: Record<string, number | boolean>;
  lr: number[];
  expected: number[][][];
  /** The optimizer the case asks for, checked. */
  spec: OptimizerSpec;
}

/** A file that does not have the reference format; the message says where. */
export class ReferenceFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReferenceFormatError';
  }
}

export interface Tolerance {
  /** An element passes when |got - expected| <= max(atol, rtol * |expected|). */
  rtol: number;
  atol: number;
}

export const DEFAULT_TOLERANCE: Readonly<Tolerance> = Object.freeze({ rtol: 1e-5, atol: 1e-6 });

export interface Mismatch {
  step: number;
  tensor: number;
  index: number;
  got: number;
  expected: number;
}

export interface CaseResult {
  name: string;
  optimizer: string;
  steps: number;
  passed: boolean;
  maxAbsError: number;
  /** Largest |got - expected| / |expected| over elements whose expected value is not 0. */
  maxRelError: number;
  /** Largest error / max(atol, rtol * |expected|): at most 1 passes. */
  worstToTolerance: number;
  /** The element with the largest worstToTolerance. */
  worst: Mismatch | null;
}

/** The hyper keys a case may give, and the spec field each sets. */
const HYPER_TYPES: Readonly<Record<string, 'number' | 'boolean'>> = {
  momentum: 'number', weightDecay: 'number', nesterov: 'boolean', beta1: 'number', beta2: 'number', eps: 'number',
  gradAveraging: 'boolean', amsgrad: 'boolean', trustCoefficient: 'number',
};

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function numberList(x: unknown, where: string, length?: number): number[] {
  if (!Array.isArray(x) || !x.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new ReferenceFormatError(`${where} must be a list of finite numbers`);
  }
  if (length !== undefined && x.length !== length) throw new ReferenceFormatError(`${where} has ${x.length} numbers, expected ${length}`);
  return x as number[];
}

function tensorList(x: unknown, where: string, sizes: number[]): number[][] {
  if (!Array.isArray(x) || x.length !== sizes.length) {
    throw new ReferenceFormatError(`${where} must be a list of ${sizes.length} tensors (one per shape)`);
  }
  return x.map((t, i) => numberList(t, `${where}[${i}]`, sizes[i]));
}

/** The optimizer spec of a case: DEFAULT_OPTIMIZER_SPEC with the case's hyper keys. */
export function specFromHyper(optimizer: string, hyper: Record<string, unknown>, where = 'hyper'): OptimizerSpec {
  const name = OPTIMIZER_NAMES.find((n) => n === optimizer);
  if (name === undefined) throw new ReferenceFormatError(`${where}: unknown optimizer '${optimizer}' (known: ${OPTIMIZER_NAMES.join(', ')})`);
  const spec: Record<string, unknown> = { ...DEFAULT_OPTIMIZER_SPEC, name };
  for (const [key, value] of Object.entries(hyper)) {
    const type = HYPER_TYPES[key];
    if (type === undefined) throw new ReferenceFormatError(`${where}: unknown hyperparameter '${key}' (known: ${Object.keys(HYPER_TYPES).join(', ')})`);
    if (typeof value !== type) throw new ReferenceFormatError(`${where}: '${key}' must be a ${type} (got ${JSON.stringify(value)})`);
    spec[key] = value;
  }
  const checked = spec as unknown as OptimizerSpec;
  try {
    createOptimizer(checked).dispose();
  } catch (e) {
    if (e instanceof OptimizerConfigError) throw new ReferenceFormatError(`${where}: ${e.message}`);
    throw e;
  }
  return checked;
}

/** Checks a parsed JSON value against the reference format. */
export function parseReferenceFile(json: unknown): ReferenceFile {
  if (!isRecord(json)) throw new ReferenceFormatError('the file must hold a JSON object with shapes, params, grads and cases');
  const { shapes, params, grads, cases, about } = json;
  if (!Array.isArray(shapes) || shapes.length === 0) throw new ReferenceFormatError('shapes must be a non-empty list of shapes');
  const checkedShapes = shapes.map((s, i) => {
    const shape = numberList(s, `shapes[${i}]`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new ReferenceFormatError(`shapes[${i}] must hold non-negative integers`);
    return shape;
  });
  const sizes = checkedShapes.map((s) => s.reduce((a, b) => a * b, 1));
  const checkedParams = tensorList(params, 'params', sizes);
  if (!Array.isArray(grads)) throw new ReferenceFormatError('grads must be a list of steps, each a list of tensors');
  const checkedGrads = grads.map((step, k) => tensorList(step, `grads[${k}]`, sizes));
  if (!Array.isArray(cases) || cases.length === 0) throw new ReferenceFormatError('cases must be a non-empty list');
  const checkedCases = cases.map((c, i): ReferenceCase => {
    const where = `cases[${i}]`;
    if (!isRecord(c)) throw new ReferenceFormatError(`${where} must be an object`);
    const name = typeof c.name === 'string' ? c.name : where;
    const label = `case '${name}'`;
    if (typeof c.optimizer !== 'string') throw new ReferenceFormatError(`${label}: optimizer must be a string`);
    const hyper = c.hyper ?? {};
    if (!isRecord(hyper)) throw new ReferenceFormatError(`${label}: hyper must be an object`);
    const lr = numberList(c.lr, `${label}: lr`);
    if (lr.length === 0) throw new ReferenceFormatError(`${label}: lr must not be empty`);
    if (lr.length > checkedGrads.length) throw new ReferenceFormatError(`${label}: ${lr.length} learning rates but only ${checkedGrads.length} gradient steps`);
    if (!lr.every((x) => x >= 0)) throw new ReferenceFormatError(`${label}: learning rates must be >= 0`);
    if (!Array.isArray(c.expected) || c.expected.length !== lr.length) {
      throw new ReferenceFormatError(`${label}: expected must hold one entry per step (${lr.length})`);
    }
    const expected = c.expected.map((step, k) => tensorList(step, `${label}: expected[${k}]`, sizes));
    const spec = specFromHyper(c.optimizer, hyper, label);
    return { name, optimizer: c.optimizer, hyper: hyper as Record<string, number | boolean>, lr, expected, spec };
  });
  return {
    about: typeof about === 'string' ? about : undefined,
    shapes: checkedShapes, params: checkedParams, grads: checkedGrads, cases: checkedCases,
  };
}

/**
 * Runs one case with the project's optimizer on the current tfjs backend in
 * float32 and compares every parameter after every step with the reference.
 */
export function runReferenceCase(file: ReferenceFile, c: ReferenceCase, tolerance: Tolerance = DEFAULT_TOLERANCE): CaseResult {
  const optimizer = createOptimizer(c.spec);
  const params = tf.tidy(() => file.params.map((p, i) => tf.variable(tf.tensor(Float32Array.from(p), file.shapes[i]), false)));
  const result: CaseResult = {
    name: c.name, optimizer: c.optimizer, steps: c.lr.length, passed: true,
    maxAbsError: 0, maxRelError: 0, worstToTolerance: 0, worst: null,
  };
  try {
    c.lr.forEach((lr, k) => {
      const grads = file.grads[k].map((g, i) => tf.tensor(Float32Array.from(g), file.shapes[i]));
      try {
        optimizer.step(params, grads, lr);
      } finally {
        tf.dispose(grads);
      }
      params.forEach((p, i) => {
        const got = p.dataSync();
        const expected = c.expected[k][i];
        for (let j = 0; j < expected.length; j++) {
          const e = expected[j];
          const err = Number.isNaN(got[j]) ? Infinity : Math.abs(got[j] - e);
          result.maxAbsError = Math.max(result.maxAbsError, err);
          if (e !== 0) result.maxRelError = Math.max(result.maxRelError, err / Math.abs(e));
          const ratio = err / Math.max(tolerance.atol, tolerance.rtol * Math.abs(e));
          if (result.worst == null || ratio > result.worstToTolerance) {
            result.worstToTolerance = ratio;
            result.worst = { step: k, tensor: i, index: j, got: got[j], expected: e };
          }
        }
      });
    });
  } finally {
    optimizer.dispose();
    tf.dispose(params);
  }
  result.passed = result.worstToTolerance <= 1;
  return result;
}

/** Runs every case of a file. */
export function checkReferenceFile(file: ReferenceFile, tolerance: Tolerance = DEFAULT_TOLERANCE): CaseResult[] {
  return file.cases.map((c) => runReferenceCase(file, c, tolerance));
}

/** One line per case, e.g. "PASS  sgd plain: 8 steps, max abs error 1.2e-8, max rel error 3.4e-8 (0.02 of tolerance)". */
export function formatCaseResult(r: CaseResult): string {
  const head = `${r.passed ? 'PASS' : 'FAIL'}  ${r.name} [${r.optimizer}]: ${r.steps} steps, max abs error ${r.maxAbsError.toExponential(2)}, ` +
    `max rel error ${r.maxRelError.toExponential(2)} (worst element at ${r.worstToTolerance.toPrecision(2)} x tolerance)`;
  if (r.passed || r.worst == null) return head;
  const w = r.worst;
  return `${head}\n      step ${w.step}, tensor ${w.tensor}, element ${w.index}: got ${w.got}, expected ${w.expected}`;
}
