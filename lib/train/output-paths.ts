/**
 * The folders a run writes (its run record under --runs-dir, the model to --save), checked before
 * the data or the engine load: a path that cannot be written fails now, naming the flag, rather
 * than after hours of training.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainConfig } from './config';

export class OutputPathError extends Error {
  override name = 'OutputPathError';
}

/** The deepest existing folder on the way to `target`, and the parts below it still to create. */
function existingAncestor(target: string, flag: string, given: string): { dir: string; missing: string[] } {
  const missing: string[] = [];
  let dir = target;
  for (;;) {
    let stat: fs.Stats | null = null;
    try {
      stat = fs.statSync(dir);
    } catch {
      stat = null;
    }
    if (stat != null) {
      if (!stat.isDirectory()) throw new OutputPathError(`${flag} ${given}: ${dir} is a file, not a folder; choose another path`);
      return { dir, missing };
    }
    const up = path.dirname(dir);
    if (up === dir) throw new OutputPathError(`${flag} ${given}: no part of the path exists`);
    missing.unshift(path.basename(dir));
    dir = up;
  }
}

/** A filesystem error as 'ENOSPC: no space left on device, write'. */
export function describeFsError(e: unknown): string {
  const error = e as NodeJS.ErrnoException;
  return error.code ? `${error.code}: ${error.message.replace(/^\w+: /, '')}` : String(e);
}

/**
 * Makes `target` (one level at a time: Node's recursive mkdir can loop forever on paths such
 * as /proc/x) and proves it writable with a file written and removed.
 */
export function ensureWritableDir(target: string, flag: string, given = target): string {
  const resolved = path.resolve(target);
  const { dir, missing } = existingAncestor(resolved, flag, given);
  let current = dir;
  for (const part of missing) {
    current = path.join(current, part);
    try {
      fs.mkdirSync(current);
    } catch (e) {
      throw new OutputPathError(`${flag} ${given}: cannot create ${current} (${describeFsError(e)}); choose a folder you can write`);
    }
  }
  const probe = path.join(resolved, `.fashion-mnist-write-test-${process.pid}`);
  try {
    fs.writeFileSync(probe, 'x');
    fs.unlinkSync(probe);
  } catch (e) {
    throw new OutputPathError(`${flag} ${given}: cannot write in ${resolved} (${describeFsError(e)}); choose a folder you can write`);
  }
  return resolved;
}

/**
 * Checks --runs-dir and --save (its parent must be writable; the folder itself is made when saving),
 * and that a new run named with --run-id does not exist yet.
 */
export function checkOutputPaths(config: Pick<TrainConfig, 'runsDir' | 'save' | 'runId' | 'resume'>): void {
  const runsDir = ensureWritableDir(config.runsDir, '--runs-dir');
  if (config.runId != null && config.resume == null && fs.existsSync(path.join(runsDir, config.runId))) {
    throw new OutputPathError(`--run-id ${config.runId}: ${path.join(runsDir, config.runId)} exists already; ` +
      `continue that run with --resume ${config.runId}, or choose another name`);
  }
  if (config.save != null) {
    const target = path.resolve(config.save);
    if (fs.existsSync(target) && !fs.statSync(target).isDirectory()) {
      throw new OutputPathError(`--save ${config.save}: ${target} is a file; --save takes a folder (model.json and weights.bin go in it)`);
    }
    ensureWritableDir(path.dirname(target), '--save', config.save);
  }
}
