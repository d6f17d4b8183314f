// 2-d convolution on the CPU. f32 runs on oneDNN's convolution primitives when Ember is built
// with oneDNN (what LibTorch uses on the CPU); f64, and f32 when oneDNN cannot serve a shape,
// run as im2col + Ember's GEMM per image and group.
//
// oneDNN primitives cost about a millisecond to create, so each (shape, params, direction) gets
// one, cached for the life of the process. Tensors stay plain NCHW; the primitive may prefer
// blocked layouts (nChw16c...), in which case the cached plan also holds the reorders into and
// out of them.
#include "conv.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/parallel.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

#if EMBER_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace ember::cpu {

namespace {

// ------------------------------------------------------------------ im2col + GEMM
// col (cg·kh·kw, oh·ow) of one image's channel group: row (ci, ki, kj), column (oy, ox).
template <class T>
void im2col(const T* x, T* col, const ConvGeom& g, int64_t cg) {
  const int64_t ohw = g.oh * g.ow;
  for (int64_t ci = 0; ci < cg; ++ci)
    for (int64_t ki = 0; ki < g.kh; ++ki)
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        T* dst = col + ((ci * g.kh + ki) * g.kw + kj) * ohw;
        const T* plane = x + ci * g.h * g.w;
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          const int64_t iy = oy * g.sh - g.ph + ki * g.dh;
          T* row = dst + oy * g.ow;
          if (iy < 0 || iy >= g.h) {
            std::fill(row, row + g.ow, T(0));
            continue;
          }
          const T* src = plane + iy * g.w;
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const int64_t ix = ox * g.sw - g.pw + kj * g.dw;
            row[ox] = (ix >= 0 && ix < g.w) ? src[ix] : T(0);
          }
        }
      }
}

// The adjoint of im2col: x += col scattered back to the image.
template <class T>
void col2im_add(const T* col, T* x, const ConvGeom& g, int64_t cg) {
  const int64_t ohw = g.oh * g.ow;
  for (int64_t ci = 0; ci < cg; ++ci)
    for (int64_t ki = 0; ki < g.kh; ++ki)
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const T* src = col + ((ci * g.kh + ki) * g.kw + kj) * ohw;
        T* plane = x + ci * g.h * g.w;
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          const int64_t iy = oy * g.sh - g.ph + ki * g.dh;
          if (iy < 0 || iy >= g.h) continue;
          T* dst = plane + iy * g.w;
          const T* row = src + oy * g.ow;
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const int64_t ix = ox * g.sw - g.pw + kj * g.dw;
            if (ix >= 0 && ix < g.w) dst[ix] += row[ox];
          }
        }
      }
}

// Row-major (rows, cols) matrix view into t starting `offset` elements after t's first element.
Tensor mat(const Tensor& t, int64_t offset, int64_t rows, int64_t cols) {
  return t.as_strided({rows, cols}, {cols, 1}, t.storage_offset() + offset);
}

template <class T>
void forward_gemm(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  Tensor col = empty({k, ohw}, {.dtype = x.dtype()});
  const T* xp = x.data<T>();
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      im2col<T>(xp + (n * g.c + gi * cg) * g.h * g.w, col.data<T>(), g, cg);
      gemm(mat(out, (n * g.o + gi * og) * ohw, og, ohw), mat(w, gi * og * k, og, k), col);
    }
  if (b.defined()) {
    T* yp = out.data<T>();
    const T* bp = b.data<T>();
    parallel_for(g.n * g.o, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const T v = bp[p % g.o];
        T* row = yp + p * ohw;
        for (int64_t i = 0; i < ohw; ++i) row[i] += v;
      }
    });
  }
}

template <class T>
void backward_input_gemm(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeom& g) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  Tensor col = empty({k, ohw}, {.dtype = gx.dtype()});
  fill(gx, 0);
  T* gxp = gx.data<T>();
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      gemm(col, mat(w, gi * og * k, og, k).t(), mat(gy, (n * g.o + gi * og) * ohw, og, ohw));
      col2im_add<T>(col.data<T>(), gxp + (n * g.c + gi * cg) * g.h * g.w, g, cg);
    }
}

template <class T>
void backward_weight_gemm(const Tensor& gw, const Tensor& gb, const Tensor& gy, const Tensor& x, const ConvGeom& g) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  if (gw.defined()) {
    Tensor col = empty({k, ohw}, {.dtype = x.dtype()});
    const T* xp = x.data<T>();
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        im2col<T>(xp + (n * g.c + gi * cg) * g.h * g.w, col.data<T>(), g, cg);
        gemm(mat(gw, gi * og * k, og, k), mat(gy, (n * g.o + gi * og) * ohw, og, ohw), col.t(), 1.0,
             n == 0 ? 0.0 : 1.0);
      }
  }
  if (gb.defined()) {
    const T* gyp = gy.data<T>();
    T* gbp = gb.data<T>();
    parallel_for(g.o, 1, [&](int64_t begin, int64_t end) {
      for (int64_t oc = begin; oc < end; ++oc) {
        double s = 0;
        for (int64_t n = 0; n < g.n; ++n) {
          const T* row = gyp + (n * g.o + oc) * ohw;
          for (int64_t i = 0; i < ohw; ++i) s += static_cast<double>(row[i]);
        }
        gbp[oc] = static_cast<T>(s);
      }
    });
  }
}

// ------------------------------------------------------------------ oneDNN
#if EMBER_HAVE_DNNL

// OpenMP's thread count is per-thread state; oneDNN reads it when a primitive runs.
void use_ember_threads() {
#ifdef _OPENMP
  if (omp_in_parallel()) return;
  const int n = get_num_threads();
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
#endif
}

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// EMBER_CONV_PLAIN=1 pins the primitives to plain nchw / oihw (no reorders), for measuring
// whether the blocked layouts oneDNN prefers pay for their reorders at a given shape.
bool plain_layouts() {
  static const bool plain = [] {
    const char* v = std::getenv("EMBER_CONV_PLAIN");
    return v != nullptr && std::strcmp(v, "0") != 0 && v[0] != '\0';
  }();
  return plain;
}

enum class Dir { kForward, kBackwardData, kBackwardWeights };

// One argument of a primitive: the plain user layout and the layout the primitive wants.
struct ArgSpec {
  int arg;
  dnnl::memory::desc user, inner;
  bool output;
  std::optional<dnnl::reorder> to_inner, to_user;
};

struct Plan {
  dnnl::primitive prim;
  std::vector<ArgSpec> args;
};

using memory = dnnl::memory;
using tag = memory::format_tag;

struct Descs {
  memory::desc src, wei, dst, bias;  // user (plain) layouts
  memory::desc src_any, wei_any, dst_any;
  memory::dims strides, dilates, pad_l, pad_r;
};

Descs make_descs(const ConvGeom& g) {
  const auto f32 = memory::data_type::f32;
  const tag any = plain_layouts() ? tag::undef : tag::any;
  Descs d;
  const memory::dims src{g.n, g.c, g.h, g.w}, dst{g.n, g.o, g.oh, g.ow};
  const memory::dims wei = g.groups == 1 ? memory::dims{g.o, g.c, g.kh, g.kw}
                                         : memory::dims{g.groups, g.o / g.groups, g.c / g.groups, g.kh, g.kw};
  const tag wtag = g.groups == 1 ? tag::oihw : tag::goihw;
  d.src = memory::desc(src, f32, tag::nchw);
  d.dst = memory::desc(dst, f32, tag::nchw);
  d.wei = memory::desc(wei, f32, wtag);
  d.bias = memory::desc({g.o}, f32, tag::x);
  d.src_any = any == tag::undef ? d.src : memory::desc(src, f32, any);
  d.dst_any = any == tag::undef ? d.dst : memory::desc(dst, f32, any);
  d.wei_any = any == tag::undef ? d.wei : memory::desc(wei, f32, any);
  d.strides = {g.sh, g.sw};
  d.dilates = {g.dh - 1, g.dw - 1};  // oneDNN counts dilation from 0
  d.pad_l = {g.ph, g.pw};
  d.pad_r = {g.ph, g.pw};
  return d;
}

dnnl::convolution_forward::primitive_desc forward_pd(const Descs& d, bool bias) {
  using cf = dnnl::convolution_forward;
  const auto desc = bias ? cf::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.src_any,
                                    d.wei_any, d.bias, d.dst_any, d.strides, d.dilates, d.pad_l, d.pad_r)
                         : cf::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.src_any,
                                    d.wei_any, d.dst_any, d.strides, d.dilates, d.pad_l, d.pad_r);
  return cf::primitive_desc(desc, cpu_engine());
}

ArgSpec arg_spec(int arg, const memory::desc& user, const memory::desc& inner, bool output) {
  ArgSpec a{arg, user, inner, output, std::nullopt, std::nullopt};
  if (user != inner) {
    if (output)
      a.to_user = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), inner, cpu_engine(), user));
    else
      a.to_inner = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), user, cpu_engine(), inner));
  }
  return a;
}

// flag: forward with bias / backward-weights with a bias gradient.
std::unique_ptr<Plan> make_plan(const ConvGeom& g, Dir dir, bool flag) {
  const Descs d = make_descs(g);
  auto plan = std::make_unique<Plan>();
  if (dir == Dir::kForward) {
    const auto pd = forward_pd(d, flag);
    plan->prim = dnnl::convolution_forward(pd);
    plan->args.push_back(arg_spec(DNNL_ARG_SRC, d.src, pd.src_desc(), false));
    plan->args.push_back(arg_spec(DNNL_ARG_WEIGHTS, d.wei, pd.weights_desc(), false));
    if (flag) plan->args.push_back(arg_spec(DNNL_ARG_BIAS, d.bias, pd.bias_desc(), false));
    plan->args.push_back(arg_spec(DNNL_ARG_DST, d.dst, pd.dst_desc(), true));
  } else if (dir == Dir::kBackwardData) {
    using cb = dnnl::convolution_backward_data;
    const auto hint = forward_pd(d, false);
    const cb::desc desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_any, d.dst_any, d.strides, d.dilates,
                        d.pad_l, d.pad_r);
    const cb::primitive_desc pd(desc, cpu_engine(), hint);
    plan->prim = cb(pd);
    plan->args.push_back(arg_spec(DNNL_ARG_DIFF_DST, d.dst, pd.diff_dst_desc(), false));
    plan->args.push_back(arg_spec(DNNL_ARG_WEIGHTS, d.wei, pd.weights_desc(), false));
    plan->args.push_back(arg_spec(DNNL_ARG_DIFF_SRC, d.src, pd.diff_src_desc(), true));
  } else {
    using cw = dnnl::convolution_backward_weights;
    const auto hint = forward_pd(d, flag);
    const auto desc = flag ? cw::desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_any, d.bias, d.dst_any,
                                      d.strides, d.dilates, d.pad_l, d.pad_r)
                           : cw::desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_any, d.dst_any, d.strides,
                                      d.dilates, d.pad_l, d.pad_r);
    const cw::primitive_desc pd(desc, cpu_engine(), hint);
    plan->prim = cw(pd);
    plan->args.push_back(arg_spec(DNNL_ARG_SRC, d.src, pd.src_desc(), false));
    plan->args.push_back(arg_spec(DNNL_ARG_DIFF_DST, d.dst, pd.diff_dst_desc(), false));
    plan->args.push_back(arg_spec(DNNL_ARG_DIFF_WEIGHTS, d.wei, pd.diff_weights_desc(), true));
    if (flag) plan->args.push_back(arg_spec(DNNL_ARG_DIFF_BIAS, d.bias, pd.diff_bias_desc(), true));
  }
  return plan;
}

using PlanKey = std::array<int64_t, 18>;

// The cached plan for (g, dir, flag), or null when oneDNN cannot build one (the caller then
// falls back to im2col).
const Plan* get_plan(const ConvGeom& g, Dir dir, bool flag) {
  static std::mutex mu;
  static std::map<PlanKey, std::unique_ptr<Plan>> cache;
  const PlanKey key{g.n,
                    g.c,
                    g.h,
                    g.w,
                    g.o,
                    g.kh,
                    g.kw,
                    g.oh,
                    g.ow,
                    g.sh,
                    g.sw,
                    g.ph,
                    g.pw,
                    g.dh,
                    g.dw,
                    g.groups,
                    static_cast<int64_t>(dir),
                    flag ? 1 : 0};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second.get();
  std::unique_ptr<Plan> plan;
  try {
    plan = make_plan(g, dir, flag);
  } catch (const dnnl::error&) {
    plan = nullptr;  // remembered as "no plan", so the failure is not retried every call
  }
  return cache.emplace(key, std::move(plan)).first->second.get();
}

// Runs the plan on plain buffers (one per args entry, in order).
void run_plan(const Plan& plan, const std::vector<void*>& ptrs) {
  use_ember_threads();
  dnnl::engine& eng = cpu_engine();
  dnnl::stream s(eng);
  std::unordered_map<int, memory> margs;
  std::vector<Tensor> buffers;  // blocked temporaries, from Ember's caching allocator
  std::vector<std::pair<memory, memory>> outputs;
  for (size_t i = 0; i < plan.args.size(); ++i) {
    const ArgSpec& a = plan.args[i];
    memory user(a.user, eng, ptrs[i]);
    if (!a.to_inner && !a.to_user) {
      margs.emplace(a.arg, user);
      continue;
    }
    buffers.push_back(empty({static_cast<int64_t>(a.inner.get_size())}, {.dtype = kUInt8}));
    memory inner(a.inner, eng, buffers.back().data_ptr());
    if (a.to_inner)
      a.to_inner->execute(s, user, inner);
    else
      outputs.emplace_back(inner, user);
    margs.emplace(a.arg, inner);
  }
  plan.prim.execute(s, margs);
  for (size_t i = 0, j = 0; i < plan.args.size(); ++i)
    if (plan.args[i].to_user) {
      plan.args[i].to_user->execute(s, outputs[j].first, outputs[j].second);
      ++j;
    }
  s.wait();
}

#endif  // EMBER_HAVE_DNNL

}  // namespace

void conv2d_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
#if EMBER_HAVE_DNNL
  if (x.dtype() == kFloat32) {
    if (const Plan* p = get_plan(g, Dir::kForward, b.defined())) {
      std::vector<void*> ptrs{x.data_ptr(), w.data_ptr()};
      if (b.defined()) ptrs.push_back(b.data_ptr());
      ptrs.push_back(out.data_ptr());
      run_plan(*p, ptrs);
      return;
    }
  }
#endif
  dispatch<kSetF32 | kSetF64>(x.dtype(), "conv2d", [&]<class T>() { forward_gemm<T>(out, x, w, b, g); });
}

void conv2d_backward_input(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeom& g) {
#if EMBER_HAVE_DNNL
  if (gx.dtype() == kFloat32) {
    if (const Plan* p = get_plan(g, Dir::kBackwardData, false)) {
      run_plan(*p, {gy.data_ptr(), w.data_ptr(), gx.data_ptr()});
      return;
    }
  }
#endif
  dispatch<kSetF32 | kSetF64>(gx.dtype(), "conv2d backward", [&]<class T>() { backward_input_gemm<T>(gx, gy, w, g); });
}

void conv2d_backward_weight(const Tensor& gw, const Tensor& gb, const Tensor& gy, const Tensor& x, const ConvGeom& g) {
#if EMBER_HAVE_DNNL
  if (gw.defined() && x.dtype() == kFloat32) {
    if (const Plan* p = get_plan(g, Dir::kBackwardWeights, gb.defined())) {
      std::vector<void*> ptrs{x.data_ptr(), gy.data_ptr(), gw.data_ptr()};
      if (gb.defined()) ptrs.push_back(gb.data_ptr());
      run_plan(*p, ptrs);
      return;
    }
  }
#endif
  dispatch<kSetF32 | kSetF64>(gy.dtype(), "conv2d backward",
                              [&]<class T>() { backward_weight_gemm<T>(gw, gb, gy, x, g); });
}

}  // namespace ember::cpu
