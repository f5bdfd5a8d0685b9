/**
 * Loads the Fashion-MNIST files kept in the project's data/ folder (see data/README.md).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import { DataError, IdxArray, parseIdx } from './idx';

// DataError lives beside the IDX parser (which throws it too) to avoid an import cycle.
export { DataError };

export const IMAGE_HEIGHT = 28;
export const IMAGE_WIDTH = 28;
export const IMAGE_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH;

export const CLASS_NAMES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
  'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;
export type ClassName = (typeof CLASS_NAMES)[number];
export const NUM_CLASSES = CLASS_NAMES.length;

export type SplitName = 'train' | 'test';

export const SPLIT_COUNTS: Readonly<Record<SplitName, number>> = { train: 60_000, test: 10_000 };

export interface FashionMnistFile {
  fileName: string;
  split: SplitName;
  kind: 'images' | 'labels';
  /** SHA-256 of the .gz file as stored in data/. */
  sha256: string;
  /** IDX dimensions after decompression. */
  dims: readonly number[];
}

export const FASHION_MNIST_FILES: readonly FashionMnistFile[] = [
  {
    fileName: 'train-images-idx3-ubyte.gz', split: 'train', kind: 'images',
    sha256: 'b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7',
    dims: [SPLIT_COUNTS.train, IMAGE_HEIGHT, IMAGE_WIDTH],
  },
  {
    fileName: 'train-labels-idx1-ubyte.gz', split: 'train', kind: 'labels',
    sha256: '0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056',
    dims: [SPLIT_COUNTS.train],
  },
  {
    fileName: 't10k-images-idx3-ubyte.gz', split: 'test', kind: 'images',
    sha256: 'cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa',
    dims: [SPLIT_COUNTS.test, IMAGE_HEIGHT, IMAGE_WIDTH],
  },
  {
    fileName: 't10k-labels-idx1-ubyte.gz', split: 'test', kind: 'labels',
    sha256: '8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05',
    dims: [SPLIT_COUNTS.test],
  },
];

export interface Split {
  /** count * 784 raw pixels (0 = background, 255 = full ink), image after image, row-major. */
  images: Uint8Array;
  /** count class indices into CLASS_NAMES. */
  labels: Uint8Array;
  count: number;
  height: 28;
  width: 28;
}

export interface FashionMnist {
  train: Split;
  test: Split;
  /** Absolute path of the folder the files were read from. */
  dataDir: string;
}

export interface LoadOptions {
  /** Folder holding the four .gz files; null or absent means defaultDataDir(). */
  dataDir?: string | null;
  /** Check each .gz against its SHA-256 (default true). */
  verify?: boolean;
}

export const RESTORE_HINT =
  'To restore the files run `git checkout -- data/` in this repository, or ' +
  '`apt-get install dataset-fashion-mnist` and pass `--data-dir /usr/share/datasets/fashion-mnist`.';

let defaultDir: string | undefined;

/**
 * The project's data/ folder: the first folder above this module that holds a package.json
 * with a data/ folder beside it (this module runs from dist/lib/data, or lib/data under a TS runner).
 */
export function defaultDataDir(): string {
  if (defaultDir !== undefined) return defaultDir;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'data');
    if (fs.existsSync(path.join(dir, 'package.json')) && isDirectory(candidate)) {
      return (defaultDir = candidate);
    }
    if (path.dirname(dir) === dir) {
      throw new DataError(
        `Could not find the project's data/ folder in any folder above ${__dirname}. ` +
        `Pass the folder holding the Fashion-MNIST .gz files explicitly (--data-dir). ${RESTORE_HINT}`);
    }
  }
}

interface CacheEntry { data: FashionMnist; verified: boolean }
const cache = new Map<string, CacheEntry>();

/** Reads, checks and decodes the four files; repeated calls for the same folder return the cached result. */
export function loadFashionMnist(options: LoadOptions = {}): FashionMnist {
  const dataDir = path.resolve(options.dataDir ?? defaultDataDir());
  const verify = options.verify !== false;
  const cached = cache.get(dataDir);
  if (cached && (cached.verified || !verify)) return cached.data;

  if (!isDirectory(dataDir)) {
    throw new DataError(`The Fashion-MNIST data folder ${dataDir} does not exist or is not a folder. ${RESTORE_HINT}`);
  }
  const missing = FASHION_MNIST_FILES
    .map((file) => path.join(dataDir, file.fileName))
    .filter((filePath) => !fs.existsSync(filePath));
  if (missing.length > 0) {
    throw new DataError(`Fashion-MNIST file${missing.length > 1 ? 's' : ''} missing: ${missing.join(', ')}. ${RESTORE_HINT}`);
  }

  const data: FashionMnist = {
    train: loadSplit(dataDir, 'train', verify),
    test: loadSplit(dataDir, 'test', verify),
    dataDir,
  };
  cache.set(dataDir, { data, verified: verify });
  return data;
}

function loadSplit(dataDir: string, split: SplitName, verify: boolean): Split {
  const images = loadFile(dataDir, fileFor(split, 'images'), verify);
  const labels = loadFile(dataDir, fileFor(split, 'labels'), verify);
  const labelsPath = path.join(dataDir, fileFor(split, 'labels').fileName);
  const bad = labels.findIndex((label) => label >= NUM_CLASSES);
  if (bad >= 0) {
    throw new DataError(`${labelsPath}: label ${labels[bad]} at index ${bad} is not a class index 0..${NUM_CLASSES - 1}. ${RESTORE_HINT}`);
  }
  // The dims check in loadFile already guarantees one label per image.
  return { images, labels, count: SPLIT_COUNTS[split], height: IMAGE_HEIGHT, width: IMAGE_WIDTH };
}

function fileFor(split: SplitName, kind: FashionMnistFile['kind']): FashionMnistFile {
  const file = FASHION_MNIST_FILES.find((f) => f.split === split && f.kind === kind);
  if (!file) throw new Error(`no Fashion-MNIST ${split} ${kind} file is described`);
  return file;
}

/** Returns the decompressed IDX elements of one file after checking everything about it. */
function loadFile(dataDir: string, file: FashionMnistFile, verify: boolean): Uint8Array {
  const filePath = path.join(dataDir, file.fileName);
  let gz: Buffer;
  try {
    gz = fs.readFileSync(filePath);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `cannot be read (${(err as Error).message})`;
    throw new DataError(`${filePath} ${reason}. ${RESTORE_HINT}`);
  }

  if (verify) {
    const actual = crypto.createHash('sha256').update(gz).digest('hex');
    if (actual !== file.sha256) {
      throw new DataError(`${filePath} is altered or truncated (SHA-256 ${actual}, expected ${file.sha256}). ${RESTORE_HINT}`);
    }
  }

  let raw: Buffer;
  try {
    raw = zlib.gunzipSync(gz);
  } catch (err) {
    throw new DataError(`${filePath} is not a valid gzip file or is truncated (${(err as Error).message}). ${RESTORE_HINT}`);
  }

  let idx: IdxArray;
  try {
    idx = parseIdx(raw, filePath);
  } catch (err) {
    if (err instanceof DataError) throw new DataError(`${err.message}. ${RESTORE_HINT}`);
    throw err;
  }
  if (idx.dims.join('x') !== file.dims.join('x')) {
    throw new DataError(
      `${filePath} holds an array of shape [${idx.dims.join(', ')}] but Fashion-MNIST ${file.split} ${file.kind} ` +
      `have shape [${file.dims.join(', ')}]. ${RESTORE_HINT}`);
  }
  return idx.data;
}

/**
 * Copies the images at `indices` into a float batch scaled to [0, 1], laid out [n, 28, 28, 1]
 * (the same order as the raw pixels), and their labels into an int batch.
 * When `out` buffers are large enough they are reused and views of the right length returned.
 */
export function gatherBatch(
  split: Split,
  indices: ArrayLike<number>,
  out?: { images: Float32Array; labels: Int32Array },
): { images: Float32Array; labels: Int32Array } {
  const n = indices.length;
  const images = out && out.images.length >= n * IMAGE_PIXELS
    ? out.images.subarray(0, n * IMAGE_PIXELS)
    : new Float32Array(n * IMAGE_PIXELS);
  const labels = out && out.labels.length >= n ? out.labels.subarray(0, n) : new Int32Array(n);

  for (let b = 0; b < n; b++) {
    const i = indices[b];
    if (!Number.isInteger(i) || i < 0 || i >= split.count) {
      throw new RangeError(`gatherBatch: index ${i} at position ${b} is outside 0..${split.count - 1}`);
    }
    const src = i * IMAGE_PIXELS;
    const dst = b * IMAGE_PIXELS;
    for (let p = 0; p < IMAGE_PIXELS; p++) images[dst + p] = split.images[src + p] / 255;
    labels[b] = split.labels[i];
  }
  return { images, labels };
}

/** Number of examples of each class, indexed like CLASS_NAMES. */
export function labelHistogram(split: Split): number[] {
  const counts = new Array<number>(NUM_CLASSES).fill(0);
  for (let i = 0; i < split.count; i++) counts[split.labels[i]]++;
  return counts;
}

function isDirectory(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}
