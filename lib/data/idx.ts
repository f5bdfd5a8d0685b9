/**
 * Reader for the IDX format used by (Fashion-)MNIST:
 *   bytes 0-1  zero
 *   byte  2    element type (0x08 = unsigned byte, the only type supported here)
 *   byte  3    number of dimensions
 *   then one big-endian uint32 per dimension, then the elements in row-major order.
 */

/** Any problem with the data files: missing, altered, truncated or malformed. */
export class DataError extends Error {
  override name = 'DataError';
}

export interface IdxArray {
  /** Size of each dimension, outermost first, e.g. [60000, 28, 28]. */
  dims: number[];
  /** The elements, row-major; a view into the parsed buffer, not a copy. */
  data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;

export function parseIdx(buf: Uint8Array, fileName: string): IdxArray {
  const fail = (problem: string): never => {
    throw new DataError(`${fileName}: ${problem}`);
  };
  if (buf.length < 4) fail(`truncated: ${buf.length} bytes is too short for an IDX header`);
  if (buf[0] !== 0 || buf[1] !== 0) {
    fail(`not an IDX file (magic number starts with 0x${hex(buf[0])} 0x${hex(buf[1])}, expected 0x00 0x00)`);
  }
  if (buf[2] !== UNSIGNED_BYTE) {
    fail(`unsupported IDX element type 0x${hex(buf[2])}; only unsigned byte (0x08) is supported`);
  }
  const ndims = buf[3];
  if (ndims === 0) fail('IDX header declares 0 dimensions');

  const headerBytes = 4 + 4 * ndims;
  if (buf.length < headerBytes) {
    fail(`truncated: the IDX header needs ${headerBytes} bytes for ${ndims} dimensions, found ${buf.length}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(view.getUint32(4 + 4 * d, false));

  const dataBytes = dims.reduce((product, size) => product * size, 1);
  const found = buf.length - headerBytes;
  if (found < dataBytes) {
    fail(`truncated: dimensions [${dims.join(', ')}] need ${dataBytes} bytes of data after the ${headerBytes}-byte header, found ${found}`);
  }
  if (found > dataBytes) {
    fail(`${found - dataBytes} unexpected trailing bytes after the ${dataBytes} bytes of data for dimensions [${dims.join(', ')}]`);
  }
  // A plain Uint8Array view (a Buffer's subarray would still be a Buffer, whose slice() does not copy).
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + headerBytes, dataBytes) };
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
