// Thread count for every CPU kernel and for the GEMMs (oneDNN and Eigen share our OpenMP pool).
#pragma once

namespace wensu {
void set_num_threads(int n);  // n <= 0: all cores
int num_threads();
}  // namespace wensu
