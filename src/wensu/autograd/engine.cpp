// The backward engine: topological order over the tape from the root, one apply() per node,
// gradients summed where paths meet, leaves accumulate across backward calls (gradient
// accumulation), and each node's saved tensors are released right after its apply().
#include <chrono>
#include <unordered_map>
#include <vector>

#include "wensu/autograd/grad_mode.h"
#include "wensu/autograd/node.h"
#include "wensu/ops/binary.h"

namespace wensu::autograd {

namespace {
thread_local bool t_grad_enabled = true;
thread_local BackwardProfile* t_profile = nullptr;

Edge edge_for(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), nullptr};
  return {nullptr, t.impl_ptr()};
}

void accumulate_leaf(TensorImpl& leaf, const Tensor& g) {
  WENSU_CHECK(g.shape() == leaf.shape, "internal: gradient of shape ", shape_str(g.shape()),
              " for a leaf of shape ", shape_str(leaf.shape));
  if (!leaf.grad) {
    // Own the buffer: g may alias a saved tensor or a view of one.
    leaf.grad = g.clone().impl_ptr();
  } else {
    Tensor acc(leaf.grad);
    ops::add_(acc, g);
  }
}
}  // namespace

void set_backward_profile(BackwardProfile* p) { t_profile = p; }

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->requires_grad()) return true;
  return false;
}

Tensor record(Tensor out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs) {
  if (!needs_grad(inputs)) return out;
  for (const Tensor* t : inputs) node->edges.push_back(t ? edge_for(*t) : Edge{});
  out.impl().requires_grad = true;
  out.impl().grad_fn = std::move(node);
  return out;
}

Tensor record(Tensor out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
  bool any = false;
  for (auto& t : inputs) any = any || t.requires_grad();
  if (!t_grad_enabled || !any) return out;
  for (auto& t : inputs) node->edges.push_back(edge_for(t));
  out.impl().requires_grad = true;
  out.impl().grad_fn = std::move(node);
  return out;
}

void run_backward(const Tensor& root, const Tensor& grad) {
  WENSU_CHECK(root.requires_grad(), "backward() on a tensor that does not require grad");
  WENSU_CHECK(grad.shape() == root.shape(), "backward(): gradient shape ", shape_str(grad.shape()),
              " does not match tensor shape ", shape_str(root.shape()));
  NoGradGuard no_grad;
  if (!root.grad_fn()) {
    accumulate_leaf(root.impl(), grad);
    return;
  }
  // Count, for every node reachable from the root, how many edges point at it.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{root.grad_fn().get()};
  pending[root.grad_fn().get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    WENSU_CHECK(!n->released, "backward() through a graph that was already freed by an earlier "
                "backward(); recompute the forward pass");
    for (auto& e : n->edges) {
      if (!e.fn) continue;
      auto [it, fresh] = pending.try_emplace(e.fn.get(), 0);
      ++it->second;
      if (fresh) stack.push_back(e.fn.get());
    }
  }
  std::unordered_map<Node*, Tensor> grads;
  grads[root.grad_fn().get()] = grad;
  // Ready nodes are held by shared_ptr: clearing a processed node's edges may drop the last
  // other reference to them.
  std::vector<std::shared_ptr<Node>> ready{root.grad_fn()};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    Node* n = node.get();
    std::vector<Tensor> in_grads;
    auto git = grads.find(n);
    if (git != grads.end()) {
      Tensor g = std::move(git->second);
      grads.erase(git);
      if (t_profile) {
        auto t0 = std::chrono::steady_clock::now();
        in_grads = n->apply(g);
        auto& e = (*t_profile)[n->name()];
        e.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        e.calls += 1;
      } else {
        in_grads = n->apply(g);
      }
    } else {
      in_grads.resize(n->edges.size());  // no gradient reached this node
    }
    n->release();
    n->released = true;
    WENSU_CHECK(in_grads.size() == n->edges.size(), "internal: ", n->name(), " returned ",
                in_grads.size(), " gradients for ", n->edges.size(), " inputs");
    for (size_t i = 0; i < n->edges.size(); ++i) {
      Edge& e = n->edges[i];
      const Tensor& gi = in_grads[i];
      if (e.leaf) {
        if (gi.defined()) accumulate_leaf(*e.leaf, gi);
      } else if (e.fn) {
        Node* next = e.fn.get();
        if (gi.defined()) {
          auto it = grads.find(next);
          if (it == grads.end())
            grads.emplace(next, gi);
          else
            it->second = ops::add(it->second, gi);
        }
        if (--pending[next] == 0) ready.push_back(e.fn);
      }
    }
    // Drop edges so upstream nodes (and the activations they saved) can be freed even while
    // the root tensor is still alive.
    n->edges.clear();
  }
}

}  // namespace wensu::autograd
