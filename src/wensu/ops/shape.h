// Shape ops: views that share storage (reshape, transpose, permute, narrow, expand, squeeze,
// unsqueeze), copies (contiguous, clone, cast), and concat/split. All differentiable.
#pragma once
#include <vector>

#include "wensu/core/tensor.h"

namespace wensu::ops {

Tensor reshape(const Tensor& x, const Shape& shape);  // -1 infers one dim; view when possible
Tensor transpose(const Tensor& x, int64_t a, int64_t b);
Tensor permute(const Tensor& x, const std::vector<int64_t>& order);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor expand(const Tensor& x, const Shape& shape);  // size-1 (or missing leading) dims -> shape
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
Tensor cast(const Tensor& x, DType dtype);  // between floating dtypes; gradient casts back

// concat: tensors equal in every dim but `dim` -> joined along `dim`.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
// split: x along `dim` into pieces of the given sizes (summing to x.size(dim)); views.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);

// Helpers shared by ops.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Sum a gradient of a broadcast result back down to `shape` (numpy broadcasting rules).
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace wensu::ops
