/**
 * A small WebAssembly assembler: enough to write SIMD loops as function
 * bodies and to encode a module that imports its memory (the wasm backend's
 * heap), so the loops run directly on tensor data.
 */

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128';

const TYPE_CODE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/** Binary size of each access, as log2 of bytes: the alignment hint. */
const ALIGN = { i32: 2, i64: 3, f32: 2, f64: 3, v128: 4 } as const;

function unsignedLeb(value: number, out: number[]): void {
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
}

function signedLeb(value: number, out: number[]): void {
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return;
  }
}

/** out.push(...items) without the argument-count limit of spreading. */
function append(out: number[], items: ArrayLike<number>): void {
  for (let i = 0; i < items.length; i++) out.push(items[i]);
}

/** A name (ASCII here) as a length-prefixed byte string. */
function encodeName(name: string, out: number[]): void {
  unsignedLeb(name.length, out);
  for (let i = 0; i < name.length; i++) out.push(name.charCodeAt(i));
}

/** SIMD instructions (0xfd prefix) this project uses, by their spec names. */
const SIMD = {
  'v128.load': 0x00, 'v128.load32_splat': 0x09, 'v128.store': 0x0b, 'v128.const': 0x0c, 'i8x16.shuffle': 0x0d,
  'i32x4.splat': 0x11, 'f32x4.splat': 0x13, 'i32x4.extract_lane': 0x1b, 'i64x2.extract_lane': 0x1d,
  'i32x4.eq': 0x37, 'i32x4.ge_u': 0x40, 'f32x4.ne': 0x42, 'f32x4.gt': 0x44,
  'v128.and': 0x4e, 'v128.or': 0x50, 'v128.xor': 0x51, 'v128.bitselect': 0x52,
  'f32x4.demote_f64x2_zero': 0x5e, 'f64x2.promote_low_f32x4': 0x5f,
  'i32x4.shl': 0xab, 'i32x4.shr_u': 0xad, 'i32x4.add': 0xae, 'i32x4.mul': 0xb5,
  'f32x4.add': 0xe4, 'f32x4.sub': 0xe5, 'f32x4.mul': 0xe6, 'f32x4.div': 0xe7,
  'f64x2.add': 0xf0, 'f64x2.sub': 0xf1, 'f64x2.mul': 0xf2,
} as const;
export type SimdOp = keyof typeof SIMD;

/** A loop bound: a local's value or a constant. */
export type Bound = { local: number } | { value: number };

/**
 * One function: parameters are locals 0..n-1, `local` adds more. The methods
 * append instructions and return `this`, so a body reads as a stack program.
 */
export class FunctionBuilder {
  private readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  private scratch: number | null = null;

  constructor(readonly name: string, readonly params: ValType[], readonly results: ValType[] = []) {}

  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  get(index: number): this { return this.op(0x20).u32(index); }
  set(index: number): this { return this.op(0x21).u32(index); }
  tee(index: number): this { return this.op(0x22).u32(index); }
  i32(value: number): this { this.code.push(0x41); signedLeb(value, this.code); return this; }
  f32(value: number): this {
    this.code.push(0x43);
    append(this.code, new Uint8Array(new Float32Array([value]).buffer));
    return this;
  }

  /** local[index] += delta (an i32 constant). */
  addTo(index: number, delta: number): this { return this.get(index).i32(delta).op(0x6a).set(index); }
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Mul(): this { return this.op(0x6c); }
  i32LtU(): this { return this.op(0x49); }

  load(type: ValType, offset = 0): this {
    if (type === 'v128') return this.simd('v128.load').memarg(ALIGN.v128, offset);
    const opcode = { i32: 0x28, i64: 0x29, f32: 0x2a, f64: 0x2b }[type];
    return this.op(opcode).memarg(ALIGN[type], offset);
  }
  store(type: ValType, offset = 0): this {
    if (type === 'v128') return this.simd('v128.store').memarg(ALIGN.v128, offset);
    const opcode = { i32: 0x36, i64: 0x37, f32: 0x38, f64: 0x39 }[type];
    return this.op(opcode).memarg(ALIGN[type], offset);
  }
  /** Loads one f32 and splats it to four lanes. */
  loadSplat(offset = 0): this { return this.simd('v128.load32_splat').memarg(ALIGN.f32, offset); }

  simd(op: SimdOp, lane?: number): this {
    this.code.push(0xfd);
    unsignedLeb(SIMD[op], this.code);
    if (lane != null) this.code.push(lane);
    return this;
  }
  /** Four equal i32 lanes. */
  i32x4Const(value: number): this {
    this.simd('v128.const');
    append(this.code, new Uint8Array(new Int32Array([value, value, value, value]).buffer));
    return this;
  }
  /** Four i32 lanes, lane 0 first. */
  i32x4Lanes(lanes: [number, number, number, number]): this {
    this.simd('v128.const');
    append(this.code, new Uint8Array(new Int32Array(lanes).buffer));
    return this;
  }
  v128Zero(): this {
    return this.i32x4Const(0);
  }
  /** i8x16.shuffle of the two v128 on the stack, lanes given as 16 byte indices (0-31). */
  shuffle(lanes: number[]): this {
    this.simd('i8x16.shuffle');
    append(this.code, lanes);
    return this;
  }
  /** The upper two f32 lanes moved down, then widened: f64x2 of lanes 2 and 3. */
  promoteHigh(): this {
    return this.tee(this.scratchV128()).get(this.scratchV128())
      .shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]).simd('f64x2.promote_low_f32x4');
  }

  /**
   * A do-while loop: `body` runs, then local `counter` advances by `step` and
   * the loop repeats while counter < end (unsigned). Runs at least once.
   */
  doWhile(counter: number, step: Bound | number, end: Bound, body: () => void): this {
    this.op(0x03, 0x40);
    body();
    this.get(counter).push(typeof step === 'number' ? { value: step } : step).i32Add().tee(counter);
    this.push(end).i32LtU().op(0x0d).u32(0);
    return this.op(0x0b);
  }

  /** Pushes a bound's value. */
  push(bound: Bound): this {
    return 'local' in bound ? this.get(bound.local) : this.i32(bound.value);
  }

  /** Runs `then` if the i32 on the stack is non-zero, else `otherwise`. */
  ifElse(then: () => void, otherwise?: () => void): this {
    this.op(0x04, 0x40);
    then();
    if (otherwise != null) {
      this.op(0x05);
      otherwise();
    }
    return this.op(0x0b);
  }

  /** The code section entry: locals then body. */
  encode(): number[] {
    const out: number[] = [];
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last != null && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    unsignedLeb(groups.length, out);
    for (const [count, t] of groups) {
      unsignedLeb(count, out);
      out.push(TYPE_CODE[t]);
    }
    append(out, this.code);
    out.push(0x0b);
    const sized: number[] = [];
    unsignedLeb(out.length, sized);
    append(sized, out);
    return sized;
  }

  private scratchV128(): number {
    if (this.scratch == null) this.scratch = this.local('v128');
    return this.scratch;
  }
  private op(...bytes: number[]): this {
    append(this.code, bytes);
    return this;
  }
  private u32(value: number): this {
    unsignedLeb(value, this.code);
    return this;
  }
  private memarg(align: number, offset: number): this {
    this.code.push(align);
    unsignedLeb(offset, this.code);
    return this;
  }
}

function section(id: number, items: number[][], out: number[]): void {
  const body: number[] = [];
  unsignedLeb(items.length, body);
  for (const item of items) append(body, item);
  out.push(id);
  unsignedLeb(body.length, out);
  append(out, body);
}

/** WebAssembly's most pages for a 32-bit memory (4 GB). */
const MAX_PAGES = 65_536;

/**
 * A module that imports env.memory and exports each function under its name; with
 * `sharedMemory`, the memory it imports is a shared one (WebAssembly threads), of any size.
 */
export function encodeModule(functions: FunctionBuilder[], sharedMemory = false): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  section(1, functions.map((f) => {
    const t = [0x60];
    unsignedLeb(f.params.length, t);
    append(t, f.params.map((p) => TYPE_CODE[p]));
    unsignedLeb(f.results.length, t);
    append(t, f.results.map((r) => TYPE_CODE[r]));
    return t;
  }), out);
  const memoryImport: number[] = [];
  encodeName('env', memoryImport);
  encodeName('memory', memoryImport);
  // Limits: flag 0 (a minimum only) or 3 (shared, with a maximum), then the minimum (and maximum) in pages.
  memoryImport.push(0x02, sharedMemory ? 0x03 : 0x00, 0x00);
  if (sharedMemory) unsignedLeb(MAX_PAGES, memoryImport);
  section(2, [memoryImport], out);
  section(3, functions.map((_, i) => { const t: number[] = []; unsignedLeb(i, t); return t; }), out);
  section(7, functions.map((f, i) => {
    const e: number[] = [];
    encodeName(f.name, e);
    e.push(0x00);
    unsignedLeb(i, e);
    return e;
  }), out);
  section(10, functions.map((f) => f.encode()), out);
  return new Uint8Array(out);
}
