import type { HeapOwner } from './simd-module';
import { simdFunctions } from './simd-module';
import { FunctionBuilder } from './wasm-asm';

/**
 * out[M, N] += sum over k of a(m, k) * b[k, N], on the wasm heap, with b and
 * out row-major and a read through strides: a(m, k) at a + k * aK + m * aM
 * (bytes). aK = M*4, aM = 4 reads a as [K, M] (a^T b: every weight gradient);
 * aK = 4, aM = K*4 reads it as [M, K] (a b). XNNPACK's matmul repacks its
 * second operand at each call, which costs more than the product when that
 * operand is long (R rows of activations) or new (a fresh gradient).
 */
export interface MatMulPlan {
  M: number;
  N: number;
  /** Byte strides of a along k and along m. */
  aK: number;
  aM: number;
}

/** Register tile: rows of out by four-column vectors (smaller at the edges). */
const TILE_ROWS = 4;
const TILE_VECTORS = 2;

/** k per call: keep the a and b rows of a block within about 256 KB (L2). */
function blockDepth(M: number, N: number): number {
  return Math.max(16, Math.min(512, Math.floor(65536 / (M + N))));
}

/** gemm(a, b, out, depth): the sum over k in [0, depth) of the pointers given, for N a multiple of 4. */
function buildGemm(p: MatMulPlan): FunctionBuilder {
  const f = new FunctionBuilder('gemm', ['i32', 'i32', 'i32', 'i32']);
  const [a, b, out, depth] = [0, 1, 2, 3];
  const [aRow, outRow, j, pa, pb, pbEnd] = Array.from({ length: 6 }, () => f.local('i32'));
  const acc = Array.from({ length: TILE_ROWS }, () => Array.from({ length: TILE_VECTORS }, () => f.local('v128')));
  const bv = Array.from({ length: TILE_VECTORS }, () => f.local('v128'));
  const s = f.local('v128');
  const N4 = p.N * 4;
  const tile = (rows: number, vectors: number) => {
    const eachAcc = (emit: (r: number, v: number) => void) => {
      for (let r = 0; r < rows; r++) for (let v = 0; v < vectors; v++) emit(r, v);
    };
    eachAcc((r, v) => f.get(out).get(outRow).i32Add().get(j).i32Add().load('v128', r * N4 + v * 16).set(acc[r][v]));
    f.get(a).get(aRow).i32Add().set(pa);
    f.get(b).get(j).i32Add().tee(pb).get(depth).i32(N4).i32Mul().i32Add().set(pbEnd);
    f.doWhile(pb, N4, { local: pbEnd }, () => {
      for (let v = 0; v < vectors; v++) f.get(pb).load('v128', v * 16).set(bv[v]);
      for (let r = 0; r < rows; r++) {
        f.get(pa).loadSplat(r * p.aM).set(s);
        for (let v = 0; v < vectors; v++) f.get(acc[r][v]).get(s).get(bv[v]).simd('f32x4.mul').simd('f32x4.add').set(acc[r][v]);
      }
      f.addTo(pa, p.aK);
    });
    eachAcc((r, v) => f.get(out).get(outRow).i32Add().get(j).i32Add().get(acc[r][v]).store('v128', r * N4 + v * 16));
  };
  const columnTiles = (rows: number) => {
    const step = TILE_VECTORS * 16;
    const wide = N4 - (N4 % step);
    f.i32(0).set(j);
    if (wide > 0) f.doWhile(j, step, { value: wide }, () => tile(rows, TILE_VECTORS));
    if (wide < N4) {
      f.i32(wide).set(j);
      tile(rows, (N4 - wide) / 16);
    }
  };
  const tall = p.M - (p.M % TILE_ROWS);
  f.i32(0).set(aRow).i32(0).set(outRow);
  if (tall > 0) {
    f.doWhile(outRow, TILE_ROWS * N4, { value: tall * N4 }, () => {
      columnTiles(TILE_ROWS);
      f.addTo(aRow, TILE_ROWS * p.aM);
    });
  }
  if (tall < p.M) {
    f.i32(tall * N4).set(outRow).i32(tall * p.aM).set(aRow);
    columnTiles(p.M - tall);
  }
  return f;
}

/**
 * Accumulates the product into out (byte offsets on the heap) over K steps
 * of k, or returns false when N is not a multiple of 4 or SIMD is unavailable.
 */
export function accumulateMatMul(owner: HeapOwner, plan: MatMulPlan, a: number, b: number, out: number, K: number): boolean {
  if (plan.N % 4 !== 0 || plan.N === 0 || plan.M === 0) return false;
  const fns = simdFunctions(owner, `gemm ${JSON.stringify(plan)}`, () => [buildGemm(plan)]);
  if (fns == null) return false;
  const step = blockDepth(plan.M, plan.N);
  for (let k0 = 0; k0 < K; k0 += step) {
    fns['gemm'](a + k0 * plan.aK, b + k0 * plan.N * 4, out, Math.min(step, K - k0));
  }
  return true;
}

/** out[M, N] += a[R, M]^T b[R, N] (row-major a and b). */
export function accumulateAtB(owner: HeapOwner, a: number, b: number, out: number, R: number, M: number, N: number): boolean {
  return accumulateMatMul(owner, { M, N, aK: M * 4, aM: 4 }, a, b, out, R);
}
