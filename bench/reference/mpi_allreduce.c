/*
 * MPI_Allreduce called from C: the baseline that bench/allreduce.ts holds the koffi binding
 * against. Built by the benchmark with gcc against Debian's libmpi.so.40; Open MPI's handles are
 * its global objects, declared here because Debian's headers (libopenmpi-dev) may be absent.
 *
 *   mpirun -np 2 ./mpi_allreduce REPEATS FLOATS...   -> rank 0 prints {"FLOATS": median ms, ...}
 */
#include <stdio.h>
#include <stdlib.h>

extern char ompi_mpi_comm_world[], ompi_mpi_float[], ompi_mpi_op_sum[];
int MPI_Init(int *argc, char ***argv);
int MPI_Comm_rank(void *comm, int *rank);
int MPI_Allreduce(const void *send, void *recv, int count, void *type, void *op, void *comm);
int MPI_Barrier(void *comm);
int MPI_Finalize(void);
#define IN_PLACE ((void *) 1)

#include "timing.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(ompi_mpi_comm_world, &rank);
  int repeats = atoi(argv[1]);
  if (rank == 0) printf("{");
  for (int s = 2; s < argc; s++) {
    int floats = atoi(argv[s]);
    float *data = malloc(sizeof(float) * (size_t) floats);
    for (int i = 0; i < floats; i++) data[i] = rank + 1;
    int count = floats > 10000000 ? (repeats / 4 > 3 ? repeats / 4 : 3) : repeats;
    double *times = malloc(sizeof(double) * (size_t) count);
    MPI_Allreduce(IN_PLACE, data, floats, ompi_mpi_float, ompi_mpi_op_sum, ompi_mpi_comm_world);
    for (int r = 0; r < count; r++) {
      MPI_Barrier(ompi_mpi_comm_world);
      double t = now_ms();
      MPI_Allreduce(IN_PLACE, data, floats, ompi_mpi_float, ompi_mpi_op_sum, ompi_mpi_comm_world);
      times[r] = now_ms() - t;
    }
    qsort(times, (size_t) count, sizeof(double), by_value);
    if (rank == 0) printf("%s\"%d\": %.6f", s > 2 ? ", " : "", floats, times[count / 2]);
    free(times);
    free(data);
  }
  if (rank == 0) printf("}\n");
  MPI_Finalize();
  return 0;
}
