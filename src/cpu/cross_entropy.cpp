// Fused cross entropy kernels: per row, one max pass, one exp-sum pass, then the loss terms.
#include <cmath>

#include "cross_entropy.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/parallel.hpp"

namespace ember::cpu {

void cross_entropy_forward(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                           const Tensor& lse, const Tensor& nll, const Tensor& smooth, const Tensor& wt) {
  const int64_t m = logits.size(0), c = logits.size(1);
  const int64_t* tgt = target.data<int64_t>();
  dispatch<kSetF32 | kSetF64>(logits.dtype(), "cross_entropy", [&]<class T>() {
    const T* x = logits.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    T* lse_p = lse.data<T>();
    T* nll_p = nll.data<T>();
    T* sm_p = smooth.data<T>();
    T* wt_p = wt.data<T>();
    parallel_for(m, std::max<int64_t>(1, 4096 / std::max<int64_t>(c, 1)), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const T* row = x + i * c;
        T mx = row[0];
        for (int64_t j = 1; j < c; ++j) mx = row[j] > mx ? row[j] : mx;
        double s = 0;
        for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(row[j] - mx));
        const T l = mx + static_cast<T>(std::log(s));
        lse_p[i] = l;
        const int64_t t = tgt[i];
        if (t == ignore_index) {
          nll_p[i] = sm_p[i] = wt_p[i] = 0;
          continue;
        }
        const T wti = w ? w[t] : T(1);
        wt_p[i] = wti;
        nll_p[i] = wti * (l - row[t]);
        double sm = 0;
        for (int64_t j = 0; j < c; ++j) sm += static_cast<double>(w ? w[j] : T(1)) * static_cast<double>(l - row[j]);
        sm_p[i] = static_cast<T>(sm);
      }
    });
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                            double label_smoothing, const Tensor& lse, const Tensor& row_scale, const Tensor& grad) {
  const int64_t m = logits.size(0), c = logits.size(1);
  const int64_t* tgt = target.data<int64_t>();
  dispatch<kSetF32 | kSetF64>(logits.dtype(), "cross_entropy backward", [&]<class T>() {
    const T* x = logits.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* lse_p = lse.data<T>();
    const T* scale = row_scale.data<T>();
    T* g = grad.data<T>();
    T wsum = 0;
    if (w) {
      for (int64_t j = 0; j < c; ++j) wsum += w[j];
    } else {
      wsum = static_cast<T>(c);
    }
    const T a = static_cast<T>(1.0 - label_smoothing);
    const T b = static_cast<T>(label_smoothing / static_cast<double>(c));
    parallel_for(m, std::max<int64_t>(1, 4096 / std::max<int64_t>(c, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        T* gr = g + i * c;
        const T* row = x + i * c;
        const int64_t t = tgt[i];
        if (t == ignore_index) {
          for (int64_t j = 0; j < c; ++j) gr[j] = 0;
          continue;
        }
        // d/dx_j of (1-e)·w_t·(lse − x_t) + (e/C)·Σ_k w_k (lse − x_k)
        //   = (1-e)·w_t·(p_j − [j = t]) + (e/C)·(p_j·Σw − w_j)
        const T wt = w ? w[t] : T(1);
        const T coef_p = a * wt + b * wsum;
        const T s = scale[i];
        for (int64_t j = 0; j < c; ++j) {
          const T p = std::exp(row[j] - lse_p[i]);
          gr[j] = s * (coef_p * p - b * (w ? w[j] : T(1)));
        }
        gr[t] -= s * a * wt;
      }
    });
  });
}

}  // namespace ember::cpu
