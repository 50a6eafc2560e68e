#include "wensu/train/toy_task.h"

namespace wensu::train {

ToyTask toy_task_from_name(const std::string& name) {
  if (name == "copy") return ToyTask::copy;
  if (name == "sum") return ToyTask::sum;
  throw Error("unknown toy task '" + name + "' (copy or sum)");
}

ToyBatch make_toy_batch(ToyTask task, Generator& gen, int64_t batch, int64_t length, int64_t vocab) {
  auto u = Tensor::rand({batch, length}, gen, DType::f64).to_vector<double>();
  std::vector<int64_t> ids(u.size()), tgt(u.size(), -100);
  for (size_t i = 0; i < u.size(); ++i) ids[i] = std::min<int64_t>(vocab - 1, int64_t(u[i] * double(vocab)));
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t* x = ids.data() + b * length;
    int64_t* t = tgt.data() + b * length;
    if (task == ToyTask::copy)
      for (int64_t i = 1; i < length; ++i) t[i] = x[i - 1];
    else
      for (int64_t i = 2; i < length; ++i) t[i] = (x[i - 1] + x[i - 2]) % vocab;
  }
  return {Tensor::from_vector(ids, {batch, length}), Tensor::from_vector(tgt, {batch, length})};
}

}  // namespace wensu::train
