#include "wensu/core/parallel.h"

#include <omp.h>

namespace wensu {

// Every CPU kernel, oneDNN's GEMM and Eigen use the OpenMP pool, so one setting covers all.
void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace wensu
