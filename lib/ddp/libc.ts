/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * A lazy loader of C library functions through koffi: `declare` receives libc and koffi and
 * returns the functions; the loader returns them, or null where koffi has no binary for this
 * platform or there is no glibc (the callers then fall back to Node's own calls).
 */
export function libcLoader<T>(declare: (libc: any, koffi: any) => T): () => T | null {
  let loaded: T | null | undefined;
  return () => {
    if (loaded !== undefined) return loaded;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const koffi = require('koffi');
      loaded = declare(koffi.load('libc.so.6'), koffi);
    } catch {
      loaded = null;
    }
    return loaded;
  };
}
