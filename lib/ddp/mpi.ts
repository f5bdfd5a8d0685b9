/**
 * The MPI library the process was launched with (Open MPI's libmpi.so.40, Debian's libopenmpi3),
 * called through koffi, a C FFI. Only the communication thread uses it: it initialises MPI itself,
 * at MPI_THREAD_FUNNELED (one thread makes every MPI call, the one that initialised it).
 *
 * Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are the addresses of its global objects
 * (ompi_mpi_comm_world, ...), read here as the library's symbols; MPI_IN_PLACE is (void *) 1.
 */
export class MpiUnavailableError extends Error {
  override name = 'MpiUnavailableError';
}

export const MPI_INSTALL_HINT = 'install Open MPI (Debian: apt-get install openmpi-bin libopenmpi3; ./setup.sh does it) ' +
  'and start the ranks with mpirun (mpirun -np 2 npx fashion-mnist --dist-backend mpi ...), or use --dist-backend ring';

const MPI_THREAD_FUNNELED = 1;
const MPI_COMM_TYPE_SHARED = 0;
const MPI_SUCCESS = 0;
const LIBRARY = process.env.FASHION_MNIST_MPI_LIBRARY ?? 'libmpi.so.40';

/** A non-blocking all-reduce in flight. */
export interface MpiRequest {
  /** MPI_Request, filled in by MPI_Iallreduce and MPI_Test. */
  readonly handle: unknown[];
}

export interface MpiShape {
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => number;

/** koffi and the MPI library, loaded (not initialised); throws MpiUnavailableError saying what to install. */
function loadLibrary(): { koffi: any; lib: any } {
  let koffi: any;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    koffi = require('koffi');
  } catch (e) {
    throw new MpiUnavailableError(`--dist-backend mpi needs the npm package koffi (npm ci installs it): ${(e as Error).message}`);
  }
  try {
    // global: Open MPI loads its own plugins, which need libmpi's symbols.
    return { koffi, lib: koffi.load(LIBRARY, { global: true }) };
  } catch (e) {
    throw new MpiUnavailableError(`--dist-backend mpi: cannot load ${LIBRARY} (${(e as Error).message}); ${MPI_INSTALL_HINT}`);
  }
}

/** Throws MpiUnavailableError, before anything else loads, when MPI cannot be used here. */
export function checkMpiLoadable(): void {
  loadLibrary();
}

/** One process's MPI: initialised on creation, finalised by `finalize()`. */
export class Mpi {
  readonly shape: MpiShape;
  readonly version: string;
  private readonly fns: Record<'iallreduce' | 'allreduce' | 'barrier' | 'test' | 'finalize' | 'abort' | 'errorString', Fn>;
  private readonly handles: { world: unknown; float: unknown; sum: unknown; inPlace: unknown };
  private finalized = false;

  constructor() {
    const { koffi, lib } = loadLibrary();
    const fn = (signature: string): Fn => lib.func(signature) as Fn;
    const initThread = fn('int MPI_Init_thread(int *argc, void *argv, int required, _Out_ int *provided)');
    const commRank = fn('int MPI_Comm_rank(void *comm, _Out_ int *rank)');
    const commSize = fn('int MPI_Comm_size(void *comm, _Out_ int *size)');
    const splitType = fn('int MPI_Comm_split_type(void *comm, int type, int key, void *info, _Out_ void **local)');
    const getVersion = fn('int MPI_Get_library_version(_Out_ char *version, _Out_ int *length)');
    this.fns = {
      iallreduce: fn('int MPI_Iallreduce(const void *send, void *recv, int count, void *type, void *op, void *comm, _Out_ void **request)'),
      allreduce: fn('int MPI_Allreduce(const void *send, void *recv, int count, void *type, void *op, void *comm)'),
      barrier: fn('int MPI_Barrier(void *comm)'),
      test: fn('int MPI_Test(_Inout_ void **request, _Out_ int *flag, void *status)'),
      finalize: fn('int MPI_Finalize()'),
      abort: fn('int MPI_Abort(void *comm, int code)'),
      errorString: fn('int MPI_Error_string(int code, _Out_ char *text, _Out_ int *length)'),
    };
    this.handles = {
      world: lib.symbol('ompi_mpi_comm_world'), float: lib.symbol('ompi_mpi_float'), sum: lib.symbol('ompi_mpi_op_sum'),
      inPlace: koffi.as(1n, 'void *'),
    };
    const provided = [0];
    this.check(initThread(null, null, MPI_THREAD_FUNNELED, provided), 'MPI_Init_thread');
    if (provided[0] < MPI_THREAD_FUNNELED) {
      throw new MpiUnavailableError(`this MPI gives thread level ${provided[0]}, less than MPI_THREAD_FUNNELED, which the communication thread needs`);
    }
    const text = Buffer.alloc(256);
    const length = [0];
    getVersion(text, length);
    this.version = text.subarray(0, length[0]).toString('utf8').split('\n')[0].replace(/\0.*$/, '').trim();
    const rank = [0];
    const size = [0];
    this.check(commRank(this.handles.world, rank), 'MPI_Comm_rank');
    this.check(commSize(this.handles.world, size), 'MPI_Comm_size');
    const local = [null];
    this.check(splitType(this.handles.world, MPI_COMM_TYPE_SHARED, rank[0], lib.symbol('ompi_mpi_info_null'), local), 'MPI_Comm_split_type');
    const localRank = [0];
    const localSize = [0];
    this.check(commRank(local[0], localRank), 'MPI_Comm_rank');
    this.check(commSize(local[0], localSize), 'MPI_Comm_size');
    this.shape = { rank: rank[0], size: size[0], localRank: localRank[0], localSize: localSize[0] };
  }

  private check(code: number, what: string): void {
    if (code === MPI_SUCCESS) return;
    let message = `error ${code}`;
    try {
      const text = Buffer.alloc(512);
      const length = [0];
      this.fns.errorString(code, text, length);
      message = text.subarray(0, length[0]).toString('utf8');
    } catch {
      // keep the code
    }
    throw new Error(`${what} failed: ${message}`);
  }

  /** Starts summing `data` over all ranks in place (MPI_Iallreduce); every rank starts them in the same order. */
  startAllReduce(data: Float32Array): MpiRequest {
    const handle: unknown[] = [null];
    this.check(this.fns.iallreduce(this.handles.inPlace, data, data.length, this.handles.float, this.handles.sum, this.handles.world, handle), 'MPI_Iallreduce');
    return { handle };
  }

  /** Whether the request has finished (MPI_Test, which also lets MPI make progress). */
  test(request: MpiRequest): boolean {
    const flag = [0];
    this.check(this.fns.test(request.handle, flag, null), 'MPI_Test');
    return flag[0] !== 0;
  }

  /** A blocking MPI_Allreduce, for the benchmark. */
  allReduce(data: Float32Array): void {
    this.check(this.fns.allreduce(this.handles.inPlace, data, data.length, this.handles.float, this.handles.sum, this.handles.world), 'MPI_Allreduce');
  }

  /** MPI_Barrier, for the benchmark. */
  barrier(): void {
    this.check(this.fns.barrier(this.handles.world), 'MPI_Barrier');
  }

  /** Ends every rank of the job (mpirun stops them and names this one). */
  abort(code: number): never {
    this.fns.abort(this.handles.world, code);
    process.exit(code);
  }

  finalize(): void {
    if (this.finalized) return;
    this.finalized = true;
    this.fns.finalize();
  }
}
