#include "wensu/core/parallel.h"

#include <omp.h>

#include "wensu/ops/cpu/blas.h"

namespace wensu {

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  ops::cpu::blas().set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace wensu
