import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import * as zlib from 'node:zlib';

import {
  CLASS_NAMES,
  DataError,
  FASHION_MNIST_FILES,
  IMAGE_PIXELS,
  defaultDataDir,
  gatherBatch,
  labelHistogram,
  loadFashionMnist,
} from '../lib/data/fashion-mnist';
import { parseIdx } from '../lib/data/idx';

const INSTRUCTION = /git checkout -- data\/.*apt-get install dataset-fashion-mnist.*--data-dir \/usr\/share\/datasets\/fashion-mnist/;

function idxBytes(typeByte: number, dims: number[], data: number[]): Uint8Array {
  const buf = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(buf.buffer);
  buf[2] = typeByte;
  buf[3] = dims.length;
  dims.forEach((size, d) => view.setUint32(4 + 4 * d, size, false));
  buf.set(data, 4 + 4 * dims.length);
  return buf;
}

describe('parseIdx', () => {
  test('reads dims and data of a hand-built idx3 buffer', () => {
    const pixels = [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255];
    const { dims, data } = parseIdx(idxBytes(0x08, [2, 2, 3], pixels), 'tiny');
    assert.deepEqual(dims, [2, 2, 3]);
    assert.deepEqual([...data], pixels);
    assert.equal(Object.getPrototypeOf(data), Uint8Array.prototype);

    // A dimension above 255 checks the big-endian decoding.
    const big = parseIdx(idxBytes(0x08, [0x0102], new Array(0x0102).fill(7)), 'big');
    assert.deepEqual(big.dims, [258]);
  });

  test('rejects malformed buffers with a DataError naming the file', () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array([0, 0]), /too short/],
      [Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]), /not an IDX file/],
      [idxBytes(0x0d, [1], [0, 0, 0, 0]), /unsupported IDX element type 0x0d/],
      [Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1]), /truncated: the IDX header needs 16 bytes/],
      [idxBytes(0x08, [2, 3], [1, 2, 3, 4]), /truncated: .*need 6 bytes of data .* found 4/],
      [idxBytes(0x08, [2], [1, 2, 3]), /1 unexpected trailing bytes/],
    ];
    for (const [buf, message] of cases) {
      assert.throws(() => parseIdx(buf, 'some-file.idx'), (err: unknown) => {
        assert.ok(err instanceof DataError);
        assert.equal(err.name, 'DataError');
        assert.match(err.message, /^some-file\.idx: /);
        assert.match(err.message, message);
        return true;
      });
    }
  });
});

describe('Fashion-MNIST in data/', () => {
  test('defaultDataDir finds the project data folder', () => {
    const dir = defaultDataDir();
    assert.equal(path.basename(dir), 'data');
    assert.ok(fs.existsSync(path.join(dir, '..', 'package.json')));
  });

  test('the .gz files match the recorded SHA-256', () => {
    for (const file of FASHION_MNIST_FILES) {
      const gz = fs.readFileSync(path.join(defaultDataDir(), file.fileName));
      assert.equal(crypto.createHash('sha256').update(gz).digest('hex'), file.sha256, file.fileName);
    }
  });

  test('loads 60,000 training and 10,000 test images of 28x28, cached per folder', () => {
    const data = loadFashionMnist();
    assert.equal(data.dataDir, defaultDataDir());
    for (const [split, count] of [[data.train, 60_000], [data.test, 10_000]] as const) {
      assert.equal(split.count, count);
      assert.equal(split.height, 28);
      assert.equal(split.width, 28);
      assert.equal(split.images.length, count * 784);
      assert.equal(split.labels.length, count);
    }
    assert.equal(loadFashionMnist(), data);
    assert.equal(loadFashionMnist({ dataDir: defaultDataDir(), verify: false }), data);
  });

  test('every class has exactly 6,000 training and 1,000 test examples', () => {
    const { train, test: testSplit } = loadFashionMnist();
    assert.equal(CLASS_NAMES.length, 10);
    assert.deepEqual(labelHistogram(train), new Array(10).fill(6_000));
    assert.deepEqual(labelHistogram(testSplit), new Array(10).fill(1_000));
  });

  test('pixels span 0..255', () => {
    const { train } = loadFashionMnist();
    let min = 255;
    let max = 0;
    for (const p of train.images) {
      if (p < min) min = p;
      if (p > max) max = p;
    }
    assert.equal(min, 0);
    assert.equal(max, 255);
  });

  test('gatherBatch scales the chosen images to [0, 1] and keeps label order', () => {
    const { train } = loadFashionMnist();
    const indices = [59_999, 0, 12_345, 0];
    const batch = gatherBatch(train, indices);
    assert.equal(batch.images.length, indices.length * IMAGE_PIXELS);
    assert.deepEqual([...batch.labels], indices.map((i) => train.labels[i]));
    for (const v of batch.images) assert.ok(v >= 0 && v <= 1);
    indices.forEach((i, b) => {
      for (let p = 0; p < IMAGE_PIXELS; p += 97) {
        assert.equal(batch.images[b * IMAGE_PIXELS + p], Math.fround(train.images[i * IMAGE_PIXELS + p] / 255));
      }
    });

    assert.throws(() => gatherBatch(train, [60_000]), RangeError);
    assert.throws(() => gatherBatch(train, [1.5]), RangeError);
  });

  test('gatherBatch reuses big-enough output buffers', () => {
    const { test: testSplit } = loadFashionMnist();
    const out = { images: new Float32Array(8 * IMAGE_PIXELS), labels: new Int32Array(8) };
    const batch = gatherBatch(testSplit, [3, 1, 4], out);
    assert.equal(batch.images.buffer, out.images.buffer);
    assert.equal(batch.labels.buffer, out.labels.buffer);
    assert.equal(batch.images.length, 3 * IMAGE_PIXELS);
    assert.equal(batch.labels.length, 3);
    assert.deepEqual([...out.labels.subarray(0, 3)], [3, 1, 4].map((i) => testSplit.labels[i]));

    const grown = gatherBatch(testSplit, new Array(9).fill(0), out);
    assert.notEqual(grown.images.buffer, out.images.buffer);
    assert.equal(grown.images.length, 9 * IMAGE_PIXELS);
  });
});

describe('loadFashionMnist errors', () => {
  const tmpDirs: string[] = [];
  after(() => {
    for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A temporary data folder linking to the real files, except those replaced by `files` (null = left out). */
  function dataDirWith(files: Record<string, Uint8Array | null>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fashion-mnist-test-'));
    tmpDirs.push(dir);
    for (const { fileName } of FASHION_MNIST_FILES) {
      const replacement = files[fileName];
      if (replacement === null) continue;
      const target = path.join(dir, fileName);
      if (replacement === undefined) fs.symlinkSync(path.join(defaultDataDir(), fileName), target);
      else fs.writeFileSync(target, replacement);
    }
    return dir;
  }

  function realGz(fileName: string): Buffer {
    return fs.readFileSync(path.join(defaultDataDir(), fileName));
  }

  function assertDataError(load: () => unknown, fileOrDir: string, problem: RegExp): void {
    assert.throws(load, (err: unknown) => {
      assert.ok(err instanceof DataError, `expected a DataError, got ${String(err)}`);
      assert.ok(err.message.includes(fileOrDir), `message should name ${fileOrDir}: ${err.message}`);
      assert.match(err.message, problem);
      assert.match(err.message, INSTRUCTION);
      return true;
    });
  }

  test('missing folder', () => {
    const dir = path.join(os.tmpdir(), `fashion-mnist-absent-${process.pid}`);
    assertDataError(() => loadFashionMnist({ dataDir: dir }), dir, /does not exist/);
  });

  test('missing file', () => {
    const name = 't10k-labels-idx1-ubyte.gz';
    const dir = dataDirWith({ [name]: null });
    assertDataError(() => loadFashionMnist({ dataDir: dir }), path.join(dir, name), /missing/);
  });

  test('truncated file', () => {
    const name = 'train-labels-idx1-ubyte.gz';
    const gz = realGz(name);
    const dir = dataDirWith({ [name]: gz.subarray(0, gz.length - 1000) });
    const file = path.join(dir, name);
    assertDataError(() => loadFashionMnist({ dataDir: dir }), file, /altered or truncated \(SHA-256 [0-9a-f]{64}, expected 0ae29f65/);
    assertDataError(() => loadFashionMnist({ dataDir: dir, verify: false }), file, /not a valid gzip file or is truncated/);
  });

  test('altered file (one flipped byte)', () => {
    const name = 't10k-images-idx3-ubyte.gz';
    const gz = Buffer.from(realGz(name));
    gz[gz.length >> 1] ^= 0x01;
    const dir = dataDirWith({ [name]: gz });
    assertDataError(() => loadFashionMnist({ dataDir: dir }), path.join(dir, name), /altered or truncated/);
  });

  test('verify=false: a valid gzip whose IDX header claims more items than present', () => {
    const name = 'train-labels-idx1-ubyte.gz';
    const idx = idxBytes(0x08, [60_000], new Array(100).fill(3));
    const dir = dataDirWith({ [name]: zlib.gzipSync(idx) });
    assertDataError(
      () => loadFashionMnist({ dataDir: dir, verify: false }),
      path.join(dir, name),
      /truncated: .*need 60000 bytes of data .* found 100/,
    );
  });

  test('verify=false: labels outside 0..9', () => {
    const name = 't10k-labels-idx1-ubyte.gz';
    const labels = new Array(10_000).fill(0);
    labels[42] = 10;
    const dir = dataDirWith({ [name]: zlib.gzipSync(idxBytes(0x08, [10_000], labels)) });
    assertDataError(() => loadFashionMnist({ dataDir: dir, verify: false }), path.join(dir, name), /label 10 at index 42/);
  });

  test('verify=false: a well-formed IDX file of the wrong shape', () => {
    const name = 't10k-labels-idx1-ubyte.gz';
    const dir = dataDirWith({ [name]: zlib.gzipSync(idxBytes(0x08, [2, 5], new Array(10).fill(1))) });
    assertDataError(() => loadFashionMnist({ dataDir: dir, verify: false }), path.join(dir, name), /shape \[2, 5\] .* \[10000\]/);
  });
});
