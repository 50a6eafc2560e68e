#include "wensu/ops/registry.h"

namespace wensu::ops {

const std::vector<OpInfo>& op_table() {
  static const std::vector<OpInfo> table = {
      // shape.h
      {"reshape", true, "shape.h"},
      {"transpose", true, "shape.h"},
      {"permute", true, "shape.h"},
      {"narrow", true, "shape.h"},
      {"expand", true, "shape.h"},
      {"contiguous", true, "shape.h"},
      {"cast", true, "shape.h"},
      {"concat", true, "shape.h"},
      {"split", true, "shape.h"},
      // binary.h
      {"add", true, "binary.h"},
      {"sub", true, "binary.h"},
      {"mul", true, "binary.h"},
      {"div", true, "binary.h"},
      {"scale", true, "binary.h"},
      {"add_scalar", true, "binary.h"},
      {"neg", true, "binary.h"},
      // reduce.h
      {"sum", true, "reduce.h"},
      {"mean", true, "reduce.h"},
      {"max", true, "reduce.h"},
      // matmul.h
      {"matmul", true, "matmul.h"},
      {"linear", true, "matmul.h"},
      // unary.h
      {"exp", true, "unary.h"},
      {"log", true, "unary.h"},
      {"sqrt", true, "unary.h"},
      {"tanh", true, "unary.h"},
      {"relu", true, "unary.h"},
      {"gelu", true, "unary.h"},
      {"gelu_tanh", true, "unary.h"},
      {"sigmoid", true, "unary.h"},
      {"softplus", true, "unary.h"},
      {"erf", true, "unary.h"},
      {"silu", true, "unary.h"},
      // softmax.h
      {"softmax", true, "softmax.h"},
      {"log_softmax", true, "softmax.h"},
      // loss.h
      {"cross_entropy", true, "loss.h"},
      // norm.h
      {"layer_norm", true, "norm.h"},
      {"rms_norm", true, "norm.h"},
      // indexing.h
      {"embedding", true, "indexing.h"},
      {"gather", true, "indexing.h"},
      {"scatter_add", true, "indexing.h"},
      {"index_select", true, "indexing.h"},
      {"masked_fill", true, "indexing.h"},
      // dropout.h
      {"dropout", true, "dropout.h"},
      // rope.h
      {"rope", true, "rope.h"},
      // attention.h
      {"attention", true, "attention.h"},
      // block_sparse_attention.h
      {"block_sparse_attention", true, "block_sparse_attention.h"},
      // moe.h (moe_routing builds index tables, no gradient)
      {"moe_routing", false, "moe.h"},
      {"moe_permute", true, "moe.h"},
      {"moe_combine", true, "moe.h"},
      {"grouped_matmul", true, "moe.h"},
      {"topk", true, "moe.h"},
  };
  return table;
}

}  // namespace wensu::ops
