/*
 * One MPI_Allreduce timed from C, for the binding's overhead: bench/allreduce.ts builds this as a
 * shared library against Debian's libmpi.so.40 and the benchmark rank (lib/launch/ring-benchmark.ts,
 * mode `paired`) loads it beside the koffi binding. The rank then alternates, on the same buffer, a
 * call timed here (from before MPI_Allreduce to after it, no FFI inside the interval) and the same
 * call through koffi timed in JavaScript, so that both see the same process, memory and moment.
 * Open MPI's handles are its global objects, declared here because libopenmpi-dev may be absent.
 */
extern char ompi_mpi_comm_world[], ompi_mpi_float[], ompi_mpi_op_sum[];
int MPI_Allreduce(const void *send, void *recv, int count, void *type, void *op, void *comm);
int MPI_Barrier(void *comm);
#define IN_PLACE ((void *) 1)

#include "timing.h"

/* Milliseconds of one in-place MPI_Allreduce of `count` floats, after an MPI_Barrier; -1 on an error. */
double fmnist_timed_allreduce(float *data, int count) {
  if (MPI_Barrier(ompi_mpi_comm_world) != 0) return -1;
  double t = now_ms();
  if (MPI_Allreduce(IN_PLACE, data, count, ompi_mpi_float, ompi_mpi_op_sum, ompi_mpi_comm_world) != 0) return -1;
  return now_ms() - t;
}
