// A node of the autograd tape: one per op application that needs gradients. It holds edges to
// the nodes (or leaf tensors) that produced its inputs and whatever the backward rule saved.
// The engine calls apply() exactly once and then release(), so saved activations are freed as
// soon as they have been used.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "wensu/core/tensor.h"

namespace wensu::autograd {

struct Node;

// Where the gradient for one input goes: into another node, into a leaf's .grad, or nowhere.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  bool active() const { return fn != nullptr || leaf != nullptr; }
};

struct Node {
  virtual ~Node() = default;
  // grad_out: gradient w.r.t. this node's output. Returns one gradient per input edge
  // (undefined where the input needs none). Called with grad mode off.
  virtual std::vector<Tensor> apply(const Tensor& grad_out) = 0;
  virtual const char* name() const = 0;
  virtual void release() {}  // drop saved tensors

  std::vector<Edge> edges;
  bool released = false;
};

// True when recording is on and any input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Connects `out` to `node`, whose edges are set from `inputs` (in the order apply() returns
// gradients). Returns `out` for chaining. Does nothing when needs_grad() is false.
Tensor record(Tensor out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs);
Tensor record(Tensor out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs);

// Runs backward from `root` with gradient `grad` (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad);

// Time spent in each kind of backward node (by Node::name()), for `wensu bench --profile`.
struct BackwardTime {
  double seconds = 0;
  int64_t calls = 0;
};
using BackwardProfile = std::map<std::string, BackwardTime>;
// While set, backward passes on this thread add their per-node times to *p (null: off).
void set_backward_profile(BackwardProfile* p);

}  // namespace wensu::autograd
