/**
 * Compares the project's optimizers with float64 reference trajectories.
 *
 *   npm run check:optimizers -- [FILE ...] [--rtol R] [--atol A] [--backend cpu|wasm]
 *
 * FILE defaults to the project's own fixtures, test/fixtures/optimizers-torch.json
 * (bench/reference/torch_references.py) and test/fixtures/optimizers-lamb-lars.json
 * (bench/reference/lamb_lars_reference.py), plus ../shared/reference/optimizers.json
 * (next to the project) when that file exists.
 * Runs in float32 on the pure-JavaScript 'cpu' engine (or --backend wasm). Prints each case's
 * worst absolute and relative error. Exit code 0: every case within
 * tolerance; 1: a mismatch; 2: a file that cannot be read or does not have
 * the reference format (an unknown optimizer or hyperparameter included).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine } from '../lib/backend/select';
import {
  checkReferenceFile, DEFAULT_TOLERANCE, formatCaseResult, parseReferenceFile, ReferenceFormatError, type Tolerance,
} from '../lib/optim/reference';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const SHARED_REFERENCE = path.resolve(PROJECT_ROOT, '..', 'shared', 'reference', 'optimizers.json');
export const PROJECT_REFERENCES = ['optimizers-torch.json', 'optimizers-lamb-lars.json']
  .map((f) => path.join(PROJECT_ROOT, 'test', 'fixtures', f));

/** The files checked when none is named: the project's fixtures, and the shared file when present. */
export function defaultReferenceFiles(): string[] {
  return fs.existsSync(SHARED_REFERENCE) ? [...PROJECT_REFERENCES, SHARED_REFERENCE] : [...PROJECT_REFERENCES];
}

class UsageError extends Error {}

const USAGE = 'usage: check-optimizers [FILE ...] [--rtol R] [--atol A] [--backend cpu|wasm]';

function parseCommandLine(argv: string[]): { files: string[]; tolerance: Tolerance; backend: 'cpu' | 'wasm' } {
  const files: string[] = [];
  const tolerance: Tolerance = { ...DEFAULT_TOLERANCE };
  let backend: 'cpu' | 'wasm' = 'cpu';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--rtol' || arg === '--atol') {
      const value = Number(argv[++i]);
      if (!(value >= 0 && Number.isFinite(value))) throw new UsageError(`${arg} needs a number >= 0`);
      tolerance[arg === '--rtol' ? 'rtol' : 'atol'] = value;
    } else if (arg === '--backend') {
      const value = argv[++i];
      if (value !== 'cpu' && value !== 'wasm') throw new UsageError(`--backend must be cpu or wasm; ${USAGE}`);
      backend = value;
    } else if (arg.startsWith('-')) {
      throw new UsageError(`unknown option ${arg}; ${USAGE}`);
    } else {
      files.push(arg);
    }
  }
  return { files: files.length > 0 ? files : defaultReferenceFiles(), tolerance, backend };
}

function load(file: string) {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ReferenceFormatError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ReferenceFormatError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseReferenceFile(json);
  } catch (e) {
    if (e instanceof ReferenceFormatError) throw new ReferenceFormatError(`${file}: ${e.message}`);
    throw e;
  }
}

async function main(): Promise<number> {
  const { files, tolerance, backend } = parseCommandLine(process.argv.slice(2));
  const loaded = files.map((f) => ({ file: f, data: load(f) }));
  const engine = await initEngine(backend);
  console.log(`engine: ${engine.description}; float32 against float64 references; ` +
    `an element passes when |error| <= max(${tolerance.atol}, ${tolerance.rtol} x |expected|)`);
  let failed = 0;
  let total = 0;
  for (const { file, data } of loaded) {
    console.log(`\n${file}: ${data.cases.length} cases, ${data.shapes.length} tensors (${data.shapes.map((s) => `[${s.join(',')}]`).join(' ')})`);
    for (const result of checkReferenceFile(data, tolerance)) {
      console.log(`  ${formatCaseResult(result)}`);
      total++;
      if (!result.passed) failed++;
    }
  }
  console.log(failed === 0 ? `\nall ${total} cases match` : `\n${failed} of ${total} cases do not match`);
  return failed === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => { process.exitCode = code; },
    (e: unknown) => {
      const known = e instanceof ReferenceFormatError || e instanceof UsageError;
      console.error(`check-optimizers: error: ${known ? (e as Error).message : (e as Error).stack ?? String(e)}`);
      process.exitCode = 2;
    },
  );
}
