#include "wensu/core/tensor.h"

#include <cmath>
#include <type_traits>
#include <sstream>

#include "wensu/autograd/node.h"
#include "wensu/core/allocator.h"
#include "wensu/core/generator.h"
#include "wensu/ops/cpu/copy.h"
#include "wensu/ops/fill.h"
#include "wensu/ops/shape.h"

namespace wensu {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t d = int64_t(s.size()) - 1; d >= 0; --d) {
    st[d] = acc;
    acc *= std::max<int64_t>(s[d], 1);
  }
  return st;
}

Storage::Storage(size_t bytes, Device d) : nbytes(bytes), device(d) { data = allocate(bytes, d); }
Storage::~Storage() { deallocate(data, nbytes, device); }

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl().storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

// ---------------------------------------------------------------- creation
Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) WENSU_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  std::vector<double> v(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) v[i] = double(i);
  return from_vector(v, {n}).to(dtype);
}

namespace {
template <typename T>
Tensor from_vec(const std::vector<T>& v, const Shape& shape) {
  WENSU_CHECK(int64_t(v.size()) == shape_numel(shape), "from_vector: ", v.size(),
              " values for shape ", shape_str(shape));
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  std::copy(v.begin(), v.end(), t.data<T>());
  return t;
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s) { return from_vec(v, s); }
Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& s) { return from_vec(v, s); }
Tensor Tensor::from_vector(const std::vector<int64_t>& v, const Shape& s) { return from_vec(v, s); }

Tensor Tensor::randn(const Shape& shape, Generator& gen, DType dtype, double mean, double std) {
  // Drawn in double and stored straight into float32 or float64 (no float64 copy of a float32
  // tensor: at long lengths that transient was most of a benchmark's memory).
  const bool direct = dtype == DType::f32 || dtype == DType::f64;
  Tensor t = empty(shape, direct ? dtype : DType::f64);
  const int64_t n = t.numel();
  // Each Philox counter yields 4 uniforms -> 2 Box-Muller pairs -> 4 normals.
  const uint64_t base = gen.reserve(uint64_t((n + 3) / 4));
  auto fill = [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (int64_t i = 0; i < n; i += 4) {
      auto r = philox4x32(gen.seed(), base + uint64_t(i / 4));
      for (int k = 0; k < 2; ++k) {
        double u1 = (double(r[2 * k]) + 1.0) / 4294967297.0;  // (0, 1]: log is finite
        double u2 = double(r[2 * k + 1]) / 4294967296.0;
        double rad = std::sqrt(-2.0 * std::log(u1));
        double z0 = rad * std::cos(2 * M_PI * u2), z1 = rad * std::sin(2 * M_PI * u2);
        if (i + 2 * k < n) p[i + 2 * k] = T(mean + std * z0);
        if (i + 2 * k + 1 < n) p[i + 2 * k + 1] = T(mean + std * z1);
      }
    }
  };
  if (t.dtype() == DType::f32)
    fill(t.data<float>());
  else
    fill(t.data<double>());
  return t.dtype() == dtype ? t : t.to(dtype);
}

Tensor Tensor::rand(const Shape& shape, Generator& gen, DType dtype, double lo, double hi) {
  Tensor t = empty(shape, DType::f64);
  double* p = t.data<double>();
  const int64_t n = t.numel();
  const uint64_t base = gen.reserve(uint64_t((n + 3) / 4));
  for (int64_t i = 0; i < n; ++i) {
    auto r = philox4x32(gen.seed(), base + uint64_t(i / 4));
    p[i] = lo + (hi - lo) * (double(r[i % 4]) / 4294967296.0);
  }
  return dtype == DType::f64 ? t : t.to(dtype);
}

// ---------------------------------------------------------------- metadata
int64_t Tensor::size(int64_t d) const { return shape()[ops::normalize_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] == 1) continue;
    if (strides()[d] != acc) return false;
    acc *= shape()[d];
  }
  return true;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return detail::concat(dtype_name(dtype()), shape_str(shape()), " ", device_name(device()));
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data) + impl().offset * int64_t(dtype_size(dtype()));
}

// ---------------------------------------------------------------- views and copies
Tensor Tensor::view(const Shape& s) const {
  WENSU_CHECK(is_contiguous(), "view() needs a contiguous tensor; use reshape()");
  return ops::reshape(*this, s);
}
Tensor Tensor::reshape(const Shape& s) const { return ops::reshape(*this, s); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return ops::transpose(*this, a, b); }
Tensor Tensor::permute(const std::vector<int64_t>& o) const { return ops::permute(*this, o); }
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const { return ops::narrow(*this, d, s, l); }
Tensor Tensor::unsqueeze(int64_t d) const { return ops::unsqueeze(*this, d); }
Tensor Tensor::squeeze(int64_t d) const { return ops::squeeze(*this, d); }
Tensor Tensor::expand(const Shape& s) const { return ops::expand(*this, s); }
Tensor Tensor::contiguous() const { return ops::contiguous(*this); }
Tensor Tensor::clone() const { return ops::clone(*this); }
Tensor Tensor::to(DType t) const { return ops::cast(*this, t); }

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor src = contiguous().detach();
  Tensor out = empty(shape(), dtype(), d);
  if (d == Device::cuda)
    cuda::copy_host_to_device(out.raw_data(), src.raw_data(), nbytes());
  else
    cuda::copy_device_to_host(out.raw_data(), src.raw_data(), nbytes());
  return out;
}

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

// ---------------------------------------------------------------- values
double Tensor::item() const {
  WENSU_CHECK(numel() == 1, "item(): tensor has ", numel(), " elements, not 1");
  Tensor c = to(Device::cpu).detach();
  Tensor d = Tensor::empty({}, DType::f64);
  ops::cpu::copy(d, c.reshape({}));
  return *d.data<double>();
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu).detach();
  Tensor d = Tensor::empty(shape(), dtype_of<T>::value);
  ops::cpu::copy(d, c);
  return std::vector<T>(d.data<T>(), d.data<T>() + d.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

void Tensor::fill_(double value) { ops::fill_(*this, value); }

void Tensor::copy_(const Tensor& src) {
  WENSU_CHECK(src.shape() == shape(), "copy_: source ", src.describe(), " into ", describe());
  if (device() == Device::cpu && src.device() == Device::cpu) {
    ops::cpu::copy(*this, src);
    return;
  }
  WENSU_CHECK(is_contiguous() && src.is_contiguous() && src.dtype() == dtype(),
              "copy_ between devices needs contiguous tensors of the same dtype");
  if (src.device() == Device::cpu)
    cuda::copy_host_to_device(raw_data(), src.raw_data(), nbytes());
  else if (device() == Device::cpu)
    cuda::copy_device_to_host(raw_data(), src.raw_data(), nbytes());
  else
    cuda::copy_device_to_device(raw_data(), src.raw_data(), nbytes());
}

// ---------------------------------------------------------------- autograd
Tensor& Tensor::set_requires_grad(bool r) {
  WENSU_CHECK(!r || is_floating(dtype()), "only floating tensors can require grad");
  WENSU_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor; use detach() first");
  impl().requires_grad = r;
  return *this;
}

void Tensor::backward(const Tensor& grad) const {
  Tensor g = grad;
  if (!g.defined()) {
    WENSU_CHECK(numel() == 1, "backward() without a gradient needs a single-element tensor, got ",
                shape_str(shape()));
    g = Tensor::ones(shape(), dtype(), device());
  }
  autograd::run_backward(*this, g);
}

}  // namespace wensu
