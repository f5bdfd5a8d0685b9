/**
 * The checkpoint file: one file per epoch, written so that no interruption leaves one that loads
 * wrong. Layout: "FMNCKPT1", the header's length (uint32 LE), the header (JSON), the tensors
 * (float32 LE, in the header's order), then the SHA-256 of everything before it. A file that is
 * truncated or altered anywhere fails the checksum and is reported, never loaded.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeFsError } from './output-paths';

const MAGIC = Buffer.from('FMNCKPT1', 'ascii');
const DIGEST_BYTES = 32;
const NAME = /^checkpoint-epoch-(\d+)\.ckpt$/;

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** A tensor's place in the payload. */
export interface TensorEntry {
  shape: number[];
}

/** What a checkpoint's header must hold to be read back: its tensors' shapes, in payload order. */
export interface CheckpointHeaderBase {
  tensors: TensorEntry[];
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The file's bytes for `header` and the tensors' values (one Float32Array per header entry). */
export function encodeCheckpoint<H extends CheckpointHeaderBase>(header: H, values: readonly Float32Array[]): Buffer {
  if (values.length !== header.tensors.length) throw new RangeError(`${values.length} tensors for ${header.tensors.length} header entries`);
  values.forEach((v, i) => {
    if (v.length !== sizeOf(header.tensors[i].shape)) throw new RangeError(`tensor ${i} has ${v.length} values for shape [${header.tensors[i].shape}]`);
  });
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  const parts = [MAGIC, length, json, ...values.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength))];
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** The header and tensors of a checkpoint file's bytes; throws CheckpointError saying what is wrong. */
export function decodeCheckpoint<H extends CheckpointHeaderBase>(bytes: Buffer): { header: H; values: Float32Array[] } {
  if (bytes.length < MAGIC.length + 4 + DIGEST_BYTES) throw new CheckpointError(`too short (${bytes.length} bytes): truncated`);
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw new CheckpointError('not a checkpoint of this project (wrong signature)');
  const body = bytes.subarray(0, bytes.length - DIGEST_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(bytes.subarray(bytes.length - DIGEST_BYTES))) {
    throw new CheckpointError(`its checksum does not match (${bytes.length} bytes): truncated or corrupted`);
  }
  const headerLength = body.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  const header = JSON.parse(body.subarray(start, start + headerLength).toString('utf8')) as H;
  let offset = start + headerLength;
  const values = header.tensors.map((entry) => {
    const bytesOfTensor = sizeOf(entry.shape) * 4;
    if (offset + bytesOfTensor > body.length) throw new CheckpointError('its tensors run past the end of the file');
    // Copied out: the file's buffer offset is not always a multiple of 4.
    const value = new Float32Array(body.buffer.slice(body.byteOffset + offset, body.byteOffset + offset + bytesOfTensor));
    offset += bytesOfTensor;
    return value;
  });
  if (offset !== body.length) throw new CheckpointError(`${body.length - offset} bytes after its tensors`);
  return { header, values };
}

export function checkpointFileName(epoch: number): string {
  return `checkpoint-epoch-${String(epoch).padStart(4, '0')}.ckpt`;
}

/** The run folder's checkpoint files, newest epoch first. */
export function listCheckpoints(runDir: string): { epoch: number; file: string }[] {
  let names: string[];
  try {
    names = fs.readdirSync(runDir);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ match: NAME.exec(name), name }))
    .filter((e): e is { match: RegExpExecArray; name: string } => e.match != null)
    .map((e) => ({ epoch: Number(e.match[1]), file: path.join(runDir, e.name) }))
    .sort((a, b) => b.epoch - a.epoch);
}

/** fsync of a folder, so that a rename in it survives a crash of the machine (best effort where unsupported). */
function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a folder; the rename is still atomic.
  } finally {
    if (fd != null) fs.closeSync(fd);
  }
}

/**
 * Writes `bytes` as the checkpoint of `epoch`: into a temporary file, flushed to disk, then renamed
 * over the final name (atomic), then the older checkpoints are removed unless `keepAll`. Until the
 * rename, the previous checkpoint is the one a resume finds; a failed write leaves it untouched.
 */
export function writeCheckpoint(runDir: string, epoch: number, bytes: Buffer, options: { keepAll: boolean }): string {
  const final = path.join(runDir, checkpointFileName(epoch));
  const temporary = `${final}.tmp-${process.pid}`;
  let fd: number | null = null;
  try {
    fd = fs.openSync(temporary, 'w');
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(temporary, final);
  } catch (e) {
    if (fd != null) fs.closeSync(fd);
    fs.rmSync(temporary, { force: true });
    const kept = listCheckpoints(runDir)[0];
    throw new CheckpointError(`cannot write the checkpoint of epoch ${epoch} in ${runDir} (${describeFsError(e)}); ` +
      `${kept ? `the checkpoint of epoch ${kept.epoch} is intact: ` : ''}free space or fix the folder, then continue with --resume ${runDir}`);
  }
  syncDir(runDir);
  for (const name of fs.readdirSync(runDir)) {
    const stale = /\.ckpt\.tmp-\d+$/.test(name);
    const older = !options.keepAll && NAME.test(name) && path.join(runDir, name) !== final;
    if (stale || older) fs.rmSync(path.join(runDir, name), { force: true });
  }
  return final;
}

/** A checkpoint that was passed over, and why. */
export interface SkippedCheckpoint {
  file: string;
  reason: string;
}

/**
 * The newest checkpoint of the run folder that reads back whole (null when none does), with the
 * newer ones that did not, and why.
 */
export function readLatestCheckpoint<H extends CheckpointHeaderBase>(runDir: string): {
  found: { file: string; header: H; values: Float32Array[] } | null; skipped: SkippedCheckpoint[];
} {
  const skipped: SkippedCheckpoint[] = [];
  for (const { file } of listCheckpoints(runDir)) {
    try {
      return { found: { file, ...decodeCheckpoint<H>(fs.readFileSync(file)) }, skipped };
    } catch (e) {
      skipped.push({ file, reason: e instanceof CheckpointError ? e.message : describeFsError(e) });
    }
  }
  return { found: null, skipped };
}
