// The n-d tensor: shared storage + offset, shape and strides (in elements), dtype, device, and
// the autograd fields. Views (reshape, transpose, permute, narrow, expand) share storage and copy
// nothing; contiguous() copies only when the layout requires it. Differentiable view ops live
// in ops/shape.h; the methods here are thin forwards to them so model code reads naturally.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "wensu/core/check.h"
#include "wensu/core/device.h"
#include "wensu/core/dtype.h"

namespace wensu {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

namespace autograd {
struct Node;
}
class Generator;

struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device = Device::cpu;
  Storage(size_t bytes, Device d);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // elements
  Shape shape;
  Shape strides;  // elements
  DType dtype = DType::f32;
  // autograd
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;  // null for leaves
  std::shared_ptr<TensorImpl> grad;         // accumulated gradient of a leaf
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (never differentiable) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu);
  static Tensor arange(int64_t n, DType dtype = DType::i64);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);
  static Tensor from_vector(const std::vector<double>& v, const Shape& shape);
  static Tensor from_vector(const std::vector<int64_t>& v, const Shape& shape);
  // Standard normal * std + mean, and uniform in [lo, hi), drawn from `gen`.
  static Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32,
                      double mean = 0.0, double std = 1.0);
  static Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::f32, double lo = 0.0,
                     double hi = 1.0);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  bool is_contiguous() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  std::string describe() const;  // "float32[2, 3] cpu"

  // ---- raw access (pointer to the first element of this view) ----
  void* raw_data() const;
  template <typename T>
  T* data() const {
    WENSU_CHECK(dtype() == dtype_of<T>::value, "tensor holds ", dtype_name(dtype()),
                ", accessed as ", dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw_data());
  }
  bool shares_storage(const Tensor& o) const { return impl().storage == o.impl().storage; }

  // ---- views and copies (differentiable; see ops/shape.h) ----
  Tensor view(const Shape& shape) const;     // contiguous only; -1 infers one dim
  Tensor reshape(const Shape& shape) const;  // view when possible, else a copy
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end) const { return narrow(dim, start, end - start); }
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // broadcast view with stride 0
  Tensor contiguous() const;
  Tensor clone() const;                 // always a fresh contiguous copy
  Tensor to(DType dtype) const;         // differentiable cast between floating types
  Tensor to(Device device) const;

  // ---- values ----
  double item() const;  // single element, any dtype
  template <typename T>
  std::vector<T> to_vector() const;  // contiguous copy as T (f32/f64/i64 tensors)
  void fill_(double value);          // in place, not recorded by autograd
  void copy_(const Tensor& src);     // in place, same shape; not recorded by autograd

  // ---- autograd ----
  bool requires_grad() const { return defined() && impl().requires_grad; }
  Tensor& set_requires_grad(bool r);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g) const { impl().grad = g.impl_; }  // handle semantics: the tensor is shared
  void zero_grad() const { impl().grad.reset(); }
  Tensor detach() const;  // shares storage, no history
  // Back-propagate from this tensor; a scalar gets an implicit gradient of 1.
  void backward(const Tensor& grad = Tensor()) const;

  TensorImpl& impl() const {
    WENSU_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Views built directly from metadata (used by ops; no autograd).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace wensu
