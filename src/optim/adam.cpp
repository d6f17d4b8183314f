// Adam and AdamW with PyTorch's exact update order (torch.optim.Adam/AdamW, single-tensor
// path), fused into one loop per parameter on the CPU; on CUDA one multi-tensor launch per
// (group, device, dtype) over the parameter list (cuda_backend::multi_adam_step). Lists rather
// than a FlatBuffer: they need no flattening (a flattened model's parameters are views into
// its buffer, so its list is updated in place by the same launch), keep per-parameter step
// counts and state tensors as they are (checkpoints unchanged), and cost the same number of
// launches; the kernel reads the list from its parameters, so nothing is copied or waited for.
#include "ember/optim/adam.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "ember/backend/cuda.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/parallel.hpp"
#include "../cpu/elementwise_loops.hpp"

namespace ember::optim {

namespace {

// The update for one contiguous chunk, compiled for AVX-512, AVX2 and baseline x86-64 and
// picked at load time (GCC's target_clones does not apply to templates, hence the macro).
// Branches are hoisted out of the loops and pointers are restrict so the loops vectorise;
// sqrt needs no errno (-fno-math-errno on this file, CMakeLists.txt).
#define EMBER_ADAM_CHUNK(T)                                                                                        \
  EMBER_SIMD_CLONES void adam_chunk(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,     \
                                    int64_t n, T one_minus_b1, T b2, T one_minus_b2, T eps, T bc2_sqrt, T step_size, \
                                    T decay, T l2, bool decoupled) {                                                \
    if (decoupled) {                                                                                               \
      for (int64_t k = 0; k < n; ++k) p[k] *= decay;                                                               \
      l2 = T(0);                                                                                                   \
    }                                                                                                              \
    for (int64_t k = 0; k < n; ++k) {                                                                              \
      const T grad = g[k] + l2 * p[k];                                                                             \
      m[k] += (grad - m[k]) * one_minus_b1; /* lerp(m, g, 1 - beta1) */                                             \
      v[k] = v[k] * b2 + one_minus_b2 * grad * grad;                                                               \
      p[k] -= step_size * (m[k] / (std::sqrt(v[k]) / bc2_sqrt + eps));                                             \
    }                                                                                                              \
  }
EMBER_ADAM_CHUNK(float)
EMBER_ADAM_CHUNK(double)
#undef EMBER_ADAM_CHUNK

// The CUDA parameters of one group on one device with one dtype, for one multi-tensor update.
struct CudaList {
  Device device;
  DType dtype;
  std::vector<Tensor> p, g, m, v, steps;
  std::vector<double> bc2_sqrt, step_size;
  void add(const Tensor& pp, const Tensor& gg, const Tensor& mm, const Tensor& vv) {
    p.push_back(pp);
    g.push_back(gg);
    m.push_back(mm);
    v.push_back(vv);
  }
};

CudaList& list_for(std::vector<CudaList>& lists, const Tensor& p) {
  for (CudaList& l : lists)
    if (l.device == p.device() && l.dtype == p.dtype()) return l;
  lists.push_back(CudaList{p.device(), p.dtype(), {}, {}, {}, {}, {}, {}, {}});
  return lists.back();
}

std::map<std::string, double> adam_defaults(double lr, double b1, double b2, double eps, double wd) {
  EMBER_CHECK(lr >= 0, ValueError, "Adam: invalid learning rate ", lr);
  EMBER_CHECK(eps >= 0, ValueError, "Adam: invalid epsilon ", eps);
  EMBER_CHECK(b1 >= 0 && b1 < 1, ValueError, "Adam: invalid beta1 ", b1, " (expected in [0, 1))");
  EMBER_CHECK(b2 >= 0 && b2 < 1, ValueError, "Adam: invalid beta2 ", b2, " (expected in [0, 1))");
  EMBER_CHECK(wd >= 0, ValueError, "Adam: invalid weight_decay ", wd);
  return {{"lr", lr}, {"beta1", b1}, {"beta2", b2}, {"eps", eps}, {"weight_decay", wd}};
}
}  // namespace

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions o) : Adam(std::move(groups), o, "Adam", false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions o, std::string type, bool decoupled)
    : Optimizer(std::move(groups), adam_defaults(o.lr, o.beta1, o.beta2, o.eps, o.weight_decay), std::move(type)),
      decoupled_(decoupled) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions o)
    : Adam(std::move(groups), AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}, "AdamW", true) {}

void Adam::step() {
  NoGradGuard ng;
  // The non-finite flag (StepGuard): on the CPU it is read here and a set flag returns before
  // anything (state and step counts included) is touched; on CUDA the kernels read it.
  const Tensor skip = take_skip_flag();
  if (skip.defined() && skip.is_cpu() && skip.item<bool>()) return;
  const Tensor device_skip = skip.defined() && !skip.is_cpu() ? skip : Tensor();  // read by the kernels
  auto& groups = param_groups();
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const ParamGroup& group = groups[gi];
    const double lr = group.get("lr"), b1 = group.get("beta1"), b2 = group.get("beta2"), eps = group.get("eps"),
                 wd = group.get("weight_decay");
    // CUDA parameters are gathered per (device, dtype) and updated by one multi-tensor launch
    // each (kernels/optim.cu) after the loop; the per-element arithmetic is that of the
    // per-tensor kernel, so the results are bit-identical to one launch per parameter.
    std::vector<CudaList> lists;
    std::vector<std::string> resolved;  // keys whose pending state this (unguarded) step makes real
    for (size_t i = 0; i < group.params.size(); ++i) {
      Tensor p = group.params[i];
      Tensor g = p.grad();
      if (!g.defined() || !p.requires_grad()) continue;
      EMBER_CHECK(p.is_contiguous(), ValueError, type_name(), ": parameters must be contiguous");
      g = g.to(p.dtype()).contiguous();
      const std::string key = param_key(gi, i);
      auto& st = state_[key];
      const bool fresh = st.find("step") == st.end();
      if (fresh) {
        st["step"] = zeros({}, {.dtype = kFloat64});
        st["exp_avg"] = zeros(p.shape(), {.dtype = p.dtype(), .device = p.device()});
        st["exp_avg_sq"] = zeros(p.shape(), {.dtype = p.dtype(), .device = p.device()});
      }
      Tensor m = st["exp_avg"], v = st["exp_avg_sq"];
      const bool decoupled = decoupled_;
      if (p.is_cuda() && device_skip.defined()) {
        // Guarded: whether this step happens is known only on the device, so the step count
        // lives there too; the kernels compute the bias corrections from it and increment it
        // only when the flag is false.
        if (!st["step"].is_cuda()) st["step"] = st["step"].to(p.device());
        if (fresh) {
          // The state exists only once a step has run: until then state_dict() leaves it out,
          // as the CPU (and PyTorch) keep no state after skipped first steps. The device step
          // count tells (> 0 once a step ran), so it serves as the pending flag of all three
          // entries (Optimizer::pending_state_), read only when state_dict() is called.
          for (const char* name : {"step", "exp_avg", "exp_avg_sq"}) pending_state_[key][name] = st["step"];
        }
        CudaList& l = list_for(lists, p);
        l.add(p, g, m, v);
        l.steps.push_back(st["step"]);
        continue;
      }
      // Unguarded: the step count is a host scalar (after guarded CUDA steps it is fetched back
      // once, a synchronisation).
      if (!st["step"].is_cpu()) st["step"] = st["step"].cpu();
      // This step certainly runs: pending entries become real once its launch is enqueued.
      if (pending_state_.count(key) != 0) resolved.push_back(key);
      double& step = *st["step"].data<double>();
      step += 1;
      const double bc1 = 1.0 - std::pow(b1, step);
      const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, step));
      const double step_size = lr / bc1;
      if (p.is_cuda()) {
        // The step count stays on the host (a CPU scalar), so no device round trip per step.
        CudaList& l = list_for(lists, p);
        l.add(p, g, m, v);
        l.bc2_sqrt.push_back(bc2_sqrt);
        l.step_size.push_back(step_size);
        continue;
      }
      dispatch<kSetF32 | kSetF64>(p.dtype(), type_name().c_str(), [&]<class T>() {
        T* pp = p.data<T>();
        const T* gp = g.data<T>();
        T* mp = m.data<T>();
        T* vp = v.data<T>();
        const T tb1 = static_cast<T>(1.0 - b1), tb2 = static_cast<T>(b2), one_minus_b2 = static_cast<T>(1.0 - b2),
                teps = static_cast<T>(eps), tbc2 = static_cast<T>(bc2_sqrt), tstep = static_cast<T>(step_size),
                decay = static_cast<T>(1.0 - lr * wd), twd = static_cast<T>(wd);
        parallel_for(p.numel(), 1 << 14, [&](int64_t b, int64_t e) {
          adam_chunk(pp + b, gp + b, mp + b, vp + b, e - b, tb1, tb2, one_minus_b2, teps, tbc2, tstep, decay, twd,
                        decoupled);
        });
      });
      p.storage()->bump_version();
    }
    for (CudaList& l : lists) {
      // One list holds either guarded or unguarded entries: the flag is the same for the whole step.
      cuda_backend::multi_adam_step(l.p, l.g, l.m, l.v, l.bc2_sqrt, l.step_size, l.steps,
                                    device_skip, lr, b1, b2, eps, wd, decoupled_);
      for (Tensor& p : l.p) p.storage()->bump_version();
    }
    for (const std::string& key : resolved) pending_state_.erase(key);
  }
}

}  // namespace ember::optim
