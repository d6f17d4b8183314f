// Batch-norm building blocks on contiguous (n, c, s) data, parallel over channels: per-channel
// moments, per-channel gradient sums, and one per-channel affine map that serves the forward
// (x·scale + shift), the eval backward (gy·scale) and the training backward
// (gy·a + x·b + d). Each row of s elements is summed in the compute type with a vectorised
// reduction and the rows are combined in double, so a channel of 10⁵ elements keeps f32 sums
// accurate.
#include <algorithm>
#include <vector>

#include "conv.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/parallel.hpp"

namespace ember::cpu {

namespace {

int64_t channel_grain(const ChannelGeom& g) {
  const int64_t per = std::max<int64_t>(1, g.n * g.s);
  return std::max<int64_t>(1, 32768 / per);
}

template <class T>
double row_sum(const T* p, int64_t s) {
  using C = compute_t<T>;
  C acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < s; ++i) acc += static_cast<C>(p[i]);
  return static_cast<double>(acc);
}

template <class T>
double row_sq_dev(const T* p, int64_t s, compute_t<T> m) {
  using C = compute_t<T>;
  C acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < s; ++i) {
    const C d = static_cast<C>(p[i]) - m;
    acc += d * d;
  }
  return static_cast<double>(acc);
}

}  // namespace

void channel_moments(const Tensor& x, const ChannelGeom& g, double* mean, double* var) {
  dispatch<kFloatingTypes>(x.dtype(), "batch_norm", [&]<class T>() {
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    const double count = static_cast<double>(g.n * g.s);
    parallel_for(g.c, channel_grain(g), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        double s = 0;
        for (int64_t n = 0; n < g.n; ++n) s += row_sum<T>(xp + (n * g.c + c) * g.s, g.s);
        const double m = s / count;
        // Second pass about the mean: no cancellation when |mean| >> std.
        double q = 0;
        for (int64_t n = 0; n < g.n; ++n) q += row_sq_dev<T>(xp + (n * g.c + c) * g.s, g.s, static_cast<C>(m));
        mean[c] = m;
        var[c] = q / count;
      }
    });
  });
}

void channel_grad_sums(const Tensor& gy, const Tensor& x, const ChannelGeom& g, const double* mean, double* sum_gy,
                       double* sum_gy_xmu) {
  dispatch<kFloatingTypes>(x.dtype(), "batch_norm backward", [&]<class T>() {
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    const T* gp = gy.data<T>();
    parallel_for(g.c, channel_grain(g), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const C m = static_cast<C>(mean[c]);
        double s1 = 0, s2 = 0;
        for (int64_t n = 0; n < g.n; ++n) {
          const T* xr = xp + (n * g.c + c) * g.s;
          const T* gr = gp + (n * g.c + c) * g.s;
          C a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
          for (int64_t i = 0; i < g.s; ++i) {
            const C gv = static_cast<C>(gr[i]);
            a1 += gv;
            a2 += gv * (static_cast<C>(xr[i]) - m);
          }
          s1 += static_cast<double>(a1);
          s2 += static_cast<double>(a2);
        }
        sum_gy[c] = s1;
        sum_gy_xmu[c] = s2;
      }
    });
  });
}

void channel_affine(const Tensor& out, const Tensor& x, const ChannelGeom& g, const double* a, const double* d,
                    const Tensor& z, const double* b) {
  dispatch<kFloatingTypes>(x.dtype(), "batch_norm", [&]<class T>() {
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    const T* zp = z.defined() ? z.data<T>() : nullptr;
    T* op = out.data<T>();
    // Parallel over (n, c) rows: with few channels and large batches this splits evenly.
    const int64_t rows = g.n * g.c;
    parallel_for(rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, g.s)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t c = r % g.c;
        const C ac = static_cast<C>(a[c]), dc = static_cast<C>(d[c]);
        const T* xr = xp + r * g.s;
        T* orow = op + r * g.s;
        if (zp != nullptr) {
          const C bc = static_cast<C>(b[c]);
          const T* zr = zp + r * g.s;
#pragma omp simd
          for (int64_t i = 0; i < g.s; ++i)
            orow[i] = static_cast<T>(static_cast<C>(xr[i]) * ac + static_cast<C>(zr[i]) * bc + dc);
        } else {
#pragma omp simd
          for (int64_t i = 0; i < g.s; ++i) orow[i] = static_cast<T>(static_cast<C>(xr[i]) * ac + dc);
        }
      }
    });
  });
}

}  // namespace ember::cpu
