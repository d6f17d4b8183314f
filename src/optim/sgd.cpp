// SGD with momentum, dampening, nesterov and L2 weight decay, as torch.optim.SGD (one fused
// loop per parameter on the CPU; on CUDA one multi-tensor launch per (group, device, dtype) over
// the parameter list, cuda_backend::multi_sgd_step: see src/optim/adam.cpp for why lists rather
// than a FlatBuffer).
#include "ember/optim/sgd.hpp"

#include <string>
#include <vector>

#include "ember/backend/cuda.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/parallel.hpp"

namespace ember::optim {

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions o)
    : Optimizer(std::move(groups),
                {{"lr", o.lr},
                 {"momentum", o.momentum},
                 {"dampening", o.dampening},
                 {"weight_decay", o.weight_decay},
                 {"nesterov", o.nesterov ? 1.0 : 0.0}},
                "SGD") {
  EMBER_CHECK(o.lr >= 0, ValueError, "SGD: invalid learning rate ", o.lr);
  EMBER_CHECK(o.momentum >= 0, ValueError, "SGD: invalid momentum ", o.momentum);
  EMBER_CHECK(o.weight_decay >= 0, ValueError, "SGD: invalid weight_decay ", o.weight_decay);
  EMBER_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), ValueError,
              "SGD: nesterov momentum requires a momentum and zero dampening");
}

void SGD::step() {
  NoGradGuard ng;
  // The non-finite flag (StepGuard): on the CPU it is read here and a set flag returns before
  // anything (state included) is touched; on CUDA the update kernels read it themselves.
  const Tensor skip = take_skip_flag();
  if (skip.defined() && skip.is_cpu() && skip.item<bool>()) return;
  const Tensor device_skip = skip.defined() && !skip.is_cpu() ? skip : Tensor();  // read by the kernels
  auto& groups = param_groups();
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const ParamGroup& group = groups[gi];
    const double lr = group.get("lr"), mom = group.get("momentum"), damp = group.get("dampening"),
                 wd = group.get("weight_decay");
    const bool nesterov = group.get("nesterov") != 0.0;
    // The CUDA parameters per (device, dtype), updated by one multi-tensor launch each after the
    // loop (per-element arithmetic identical to the per-tensor kernel).
    struct CudaList {
      Device device;
      DType dtype;
      std::vector<Tensor> p, g, buf, started;
      std::vector<bool> first;
    };
    std::vector<CudaList> lists;
    std::vector<std::string> resolved;  // keys whose started flags this (unguarded) step makes true
    for (size_t i = 0; i < group.params.size(); ++i) {
      Tensor p = group.params[i];
      Tensor g = p.grad();
      if (!g.defined() || !p.requires_grad()) continue;
      EMBER_CHECK(p.is_contiguous(), ValueError, "SGD: parameters must be contiguous");
      g = g.to(p.dtype()).contiguous();
      const std::string key = param_key(gi, i);
      auto& st = state_[key];
      const bool first = st.find("momentum_buffer") == st.end();
      if (mom != 0 && first) st["momentum_buffer"] = zeros(p.shape(), {.dtype = p.dtype(), .device = p.device()});
      Tensor buf = mom != 0 ? st["momentum_buffer"] : Tensor();
      if (p.is_cuda()) {
        // With a device flag the host cannot know whether this step runs, so a buffer created
        // now gets per-chunk "started" flags on the device (pending_state_): the kernel starts
        // the buffer as the gradient while they are false, as PyTorch's first step that runs,
        // and sets them when the step is not skipped. An unguarded step certainly runs, so
        // once it is enqueued the flags are dropped (the kernel still reads them).
        Tensor started;
        if (buf.defined() && p.numel() > 0) {
          auto pk = pending_state_.find(key);
          if (first && device_skip.defined()) {
            started = cuda_backend::sgd_started_flags(p);
            pending_state_[key]["momentum_buffer"] = started;
          } else if (pk != pending_state_.end() && pk->second.count("momentum_buffer") != 0) {
            started = pk->second.at("momentum_buffer");
            if (!device_skip.defined()) resolved.push_back(key);
          }
        }
        size_t li = 0;
        while (li < lists.size() && !(lists[li].device == p.device() && lists[li].dtype == p.dtype())) ++li;
        if (li == lists.size()) lists.push_back(CudaList{p.device(), p.dtype(), {}, {}, {}, {}, {}});
        lists[li].p.push_back(p);
        lists[li].g.push_back(g);
        lists[li].buf.push_back(buf);
        lists[li].started.push_back(started);
        lists[li].first.push_back(first);
        continue;
      }
      dispatch<kSetF32 | kSetF64>(p.dtype(), "SGD", [&]<class T>() {
        T* pp = p.data<T>();
        const T* gp = g.data<T>();
        T* bp = buf.defined() ? buf.data<T>() : nullptr;
        const T tlr = static_cast<T>(lr), twd = static_cast<T>(wd), tm = static_cast<T>(mom),
                one_minus_damp = static_cast<T>(1.0 - damp);
        parallel_for(p.numel(), 1 << 15, [&](int64_t b, int64_t e) {
          for (int64_t k = b; k < e; ++k) {
            T d = gp[k];
            if (wd != 0) d += twd * pp[k];
            if (bp) {
              bp[k] = first ? d : tm * bp[k] + one_minus_damp * d;
              d = nesterov ? d + tm * bp[k] : bp[k];
            }
            pp[k] -= tlr * d;
          }
        });
      });
      p.storage()->bump_version();
    }
    for (CudaList& l : lists) {
      cuda_backend::multi_sgd_step(l.p, l.g, l.buf, l.first, lr, mom, damp, wd, nesterov, device_skip, l.started);
      for (Tensor& p : l.p) p.storage()->bump_version();
    }
    for (const std::string& key : resolved) {
      auto pk = pending_state_.find(key);
      pk->second.erase("momentum_buffer");
      if (pk->second.empty()) pending_state_.erase(pk);
    }
  }
}

}  // namespace ember::optim
