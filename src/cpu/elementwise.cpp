// CPU binary elementwise kernels (arithmetic, comparisons, logical ops, fused activation
// gradients) and where.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <type_traits>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
// Floating-point exceptions are never enabled in Ember, so let GCC treat comparisons as
// non-trapping: otherwise it refuses to if-convert the NaN and range selects in vec_math.hpp and
// the AVX2 / SSE2 clones of the transcendental loops stay scalar.
#pragma GCC optimize("no-trapping-math")
#include "elementwise_loops.hpp"
#include "streaming.hpp"
#include "vec_math.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace ember::cpu {

// ---- streaming stores (streaming.hpp)

namespace {

/// Size of the last-level cache in bytes, 0 if unknown. sysfs first: in some VMs glibc's sysconf
/// reports the host's total (320 MiB on the 2-vCPU development VM, whose L3 is 32 MiB).
int64_t last_level_cache_bytes() {
  for (int index = 3; index >= 2; --index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size");
    int level = 0;
    std::string size;
    if (!(level_file >> level) || level < 2 || !(size_file >> size) || size.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(size.c_str(), &end, 10);
    if (v <= 0) continue;
    const int64_t unit = (*end == 'K') ? 1024 : (*end == 'M') ? 1024 * 1024 : (*end == 'G') ? int64_t{1} << 30 : 1;
    return static_cast<int64_t>(v) * unit;
  }
#if defined(_SC_LEVEL3_CACHE_SIZE)
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (l3 > 0) return l3;
#endif
  return 0;
}

std::atomic<int64_t>& threshold_cell() {
  static std::atomic<int64_t> cell{streaming_threshold_default()};
  return cell;
}

#if EMBER_ISA_DISPATCH
// Body (64-byte aligned dst) in full lines; the tail with normal stores.
EMBER_TARGET_V4 void stream_body_v4(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}
EMBER_TARGET_V3 void stream_body_v3(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8));
  }
  for (; i < n; ++i) dst[i] = src[i];
}
#endif
void stream_body_base(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16)
    for (int64_t j = 0; j < 16; j += 4) _mm_stream_ps(dst + i + j, _mm_loadu_ps(src + i + j));
#endif
  for (; i < n; ++i) dst[i] = src[i];
}
#if EMBER_ISA_DISPATCH
void (*const stream_body)(float*, const float*, int64_t) = pick_isa(&stream_body_v4, &stream_body_v3,
                                                                    &stream_body_base);
#else
void (*const stream_body)(float*, const float*, int64_t) = &stream_body_base;
#endif

}  // namespace

int64_t streaming_threshold_default() {
  if (const char* env = std::getenv("EMBER_STREAMING_THRESHOLD")) {
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    if (end != env && *end == '\0' && v >= 0) return static_cast<int64_t>(v);
  }
  const int64_t llc = last_level_cache_bytes();
  return (llc > 0 ? llc : int64_t{32} << 20) / 2;
}

int64_t streaming_threshold() { return threshold_cell().load(std::memory_order_relaxed); }

void stream_store(float* dst, const float* src, int64_t n) {
  const int64_t head = std::min(n, floats_to_line(dst));
  for (int64_t i = 0; i < head; ++i) dst[i] = src[i];
  stream_body(dst + head, src + head, n - head);
}

namespace {
std::atomic<int64_t> g_streamed_elements{0};
}

void stream_row_done(int64_t n) {
#if defined(__SSE2__)
  _mm_sfence();
#endif
  g_streamed_elements.fetch_add(n, std::memory_order_relaxed);
}

namespace detail {
int64_t set_streaming_threshold(int64_t bytes) {
  return threshold_cell().exchange(bytes < 0 ? streaming_threshold_default() : bytes);
}
int64_t get_streaming_threshold() { return streaming_threshold(); }
int64_t streamed_elements() { return g_streamed_elements.load(std::memory_order_relaxed); }
}  // namespace detail

namespace {

// Contiguous f32 kernels, one ISA clone each (see EMBER_SIMD_CLONES).
EMBER_DEFINE_F32_BINARY(k_add_rows, a + alpha * b)
EMBER_DEFINE_F32_BINARY(k_sub_rows, a - alpha * b)
EMBER_DEFINE_F32_BINARY(k_mul_rows, a* b)
EMBER_DEFINE_F32_BINARY(k_div_rows, a / b)

// Streaming variants of the vector-vector arithmetic kernels (F32BinaryKernels::vv_stream):
// normal stores up to o's first 64-byte boundary and for the tail, non-temporal stores between.
// The same expressions as above, written with GCC's vector operators rather than FMA intrinsics,
// so the compiler contracts (or, at -O1, does not contract) a + alpha b exactly as it does in the
// normal path's loops: the results are bit-identical to it at every optimisation level.
enum class Arith { add, sub, mul, div };

template <Arith kOp>
inline __attribute__((always_inline)) float arith_scalar(float a, float b, float alpha) {
  if constexpr (kOp == Arith::add) return a + alpha * b;
  if constexpr (kOp == Arith::sub) return a - alpha * b;
  if constexpr (kOp == Arith::mul) return a * b;
  return a / b;
}

#if EMBER_ISA_DISPATCH
template <Arith kOp>
EMBER_TARGET_V4 void arith_stream_v4(float* o, const float* pa, const float* pb, int64_t n, float alpha) {
  const __m512 va = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (const int64_t head = std::min(n, floats_to_line(o)); i < head; ++i)
    o[i] = arith_scalar<kOp>(pa[i], pb[i], alpha);
  for (; i + 16 <= n; i += 16) {
    const __m512 a = _mm512_loadu_ps(pa + i), b = _mm512_loadu_ps(pb + i);
    __m512 r;
    if constexpr (kOp == Arith::add) r = a + va * b;  // the expression of k_add_rows
    if constexpr (kOp == Arith::sub) r = a - va * b;
    if constexpr (kOp == Arith::mul) r = _mm512_mul_ps(a, b);
    if constexpr (kOp == Arith::div) r = _mm512_div_ps(a, b);
    _mm512_stream_ps(o + i, r);
  }
  for (; i < n; ++i) o[i] = arith_scalar<kOp>(pa[i], pb[i], alpha);
}
template <Arith kOp>
EMBER_TARGET_V3 void arith_stream_v3(float* o, const float* pa, const float* pb, int64_t n, float alpha) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (const int64_t head = std::min(n, floats_to_line(o)); i < head; ++i)
    o[i] = arith_scalar<kOp>(pa[i], pb[i], alpha);
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_loadu_ps(pa + i), b = _mm256_loadu_ps(pb + i);
    __m256 r;
    if constexpr (kOp == Arith::add) r = a + va * b;  // the expression of k_add_rows
    if constexpr (kOp == Arith::sub) r = a - va * b;
    if constexpr (kOp == Arith::mul) r = _mm256_mul_ps(a, b);
    if constexpr (kOp == Arith::div) r = _mm256_div_ps(a, b);
    _mm256_stream_ps(o + i, r);
  }
  for (; i < n; ++i) o[i] = arith_scalar<kOp>(pa[i], pb[i], alpha);
}
/// The streaming kernel for the running CPU; null (L1 buffer + stream_store) below x86-64-v3.
template <Arith kOp>
void (*arith_stream())(float*, const float*, const float*, int64_t, float) {
  return pick_isa<void (*)(float*, const float*, const float*, int64_t, float)>(&arith_stream_v4<kOp>,
                                                                                &arith_stream_v3<kOp>, nullptr);
}
#else
template <Arith kOp>
void (*arith_stream())(float*, const float*, const float*, int64_t, float) {
  return nullptr;
}
#endif

const F32BinaryKernels k_add{k_add_rows.vv, k_add_rows.vs, k_add_rows.sv, arith_stream<Arith::add>()};
const F32BinaryKernels k_sub{k_sub_rows.vv, k_sub_rows.vs, k_sub_rows.sv, arith_stream<Arith::sub>()};
const F32BinaryKernels k_mul{k_mul_rows.vv, k_mul_rows.vs, k_mul_rows.sv, arith_stream<Arith::mul>()};
const F32BinaryKernels k_div{k_div_rows.vv, k_div_rows.vs, k_div_rows.sv, arith_stream<Arith::div>()};
EMBER_DEFINE_F32_BINARY(k_maximum, (a > b || a != a) ? a : b)
EMBER_DEFINE_F32_BINARY(k_minimum, (a < b || a != a) ? a : b)
EMBER_DEFINE_F32_BINARY(k_threshold_backward, b > 0.0f ? a : 0.0f)
EMBER_DEFINE_F32_BINARY(k_tanh_backward, a*(1.0f - b * b))
EMBER_DEFINE_F32_BINARY(k_sigmoid_backward, a* b*(1.0f - b))
EMBER_DEFINE_F32_BINARY_ISA(k_gelu_backward, a* vm::gelu_grad<kFma>(b))
EMBER_DEFINE_F32_BINARY(k_gelu_tanh_backward, a* vm::gelu_tanh_grad(b))
EMBER_DEFINE_F32_BINARY(k_silu_backward, a* vm::silu_grad(b))

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
    case BinaryOp::pow: return "pow";
    case BinaryOp::eq: return "eq";
    case BinaryOp::ne: return "ne";
    case BinaryOp::lt: return "lt";
    case BinaryOp::le: return "le";
    case BinaryOp::gt: return "gt";
    case BinaryOp::ge: return "ge";
    case BinaryOp::logical_and: return "logical_and";
    case BinaryOp::logical_or: return "logical_or";
    case BinaryOp::threshold_backward: return "relu_backward";
    case BinaryOp::tanh_backward: return "tanh_backward";
    case BinaryOp::sigmoid_backward: return "sigmoid_backward";
    case BinaryOp::gelu_backward: return "gelu_backward";
    case BinaryOp::gelu_tanh_backward: return "gelu_backward";
    case BinaryOp::silu_backward: return "silu_backward";
  }
  return "binary";
}

/// Integer power by squaring; negative exponents give 1, -1 or 0 (the integer part of 1/b^-e).
template <class T>
T int_pow(T base, T e) {
  if constexpr (std::is_signed_v<T>) {
    if (e < 0) {
      if (base == 1) return 1;
      if (base == -1) return (e & 1) ? T(-1) : T(1);
      return 0;
    }
  }
  T r = 1;
  while (e) {
    if (e & 1) r = static_cast<T>(r * base);
    base = static_cast<T>(base * base);
    e = static_cast<T>(e >> 1);
  }
  return r;
}

template <class T>
void arith(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, const Scalar& alpha_s) {
  using C = compute_t<T>;
  const C alpha = alpha_s.to<C>();
  auto run = [&](auto f, const F32BinaryKernels* k) { binary_loop<T, T>(out, a, b, f, k, static_cast<float>(alpha)); };
  switch (op) {
    case BinaryOp::add: run([alpha](T x, T y) { return static_cast<T>(C(x) + alpha * C(y)); }, &k_add); return;
    case BinaryOp::sub:
      if constexpr (std::is_same_v<T, bool>)
        break;
      else
        run([alpha](T x, T y) { return static_cast<T>(C(x) - alpha * C(y)); }, &k_sub);
      return;
    case BinaryOp::mul: run([](T x, T y) { return static_cast<T>(C(x) * C(y)); }, &k_mul); return;
    case BinaryOp::div:
      if constexpr (!std::is_floating_point_v<C>)
        break;
      else
        run([](T x, T y) { return static_cast<T>(C(x) / C(y)); }, &k_div);
      return;
    case BinaryOp::maximum:
      run(
          [](T x, T y) {
            const C u = C(x), v = C(y);
            return static_cast<T>((u > v || u != u) ? u : v);
          },
          &k_maximum);
      return;
    case BinaryOp::minimum:
      run(
          [](T x, T y) {
            const C u = C(x), v = C(y);
            return static_cast<T>((u < v || u != u) ? u : v);
          },
          &k_minimum);
      return;
    case BinaryOp::pow:
      if constexpr (std::is_same_v<T, bool>)
        break;
      else if constexpr (std::is_floating_point_v<C>)
        run([](T x, T y) { return static_cast<T>(std::pow(C(x), C(y))); }, nullptr);
      else
        run([](T x, T y) { return int_pow<T>(x, y); }, nullptr);
      return;
    default: break;
  }
  EMBER_THROW(DTypeError, binary_name(op), ": dtype ", dtype_name(dtype_of_v<T>), " is not supported");
}

template <class T>
void compare(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  switch (op) {
    case BinaryOp::eq: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) == C(y); }); return;
    case BinaryOp::ne: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) != C(y); }); return;
    case BinaryOp::lt: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) < C(y); }); return;
    case BinaryOp::le: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) <= C(y); }); return;
    case BinaryOp::gt: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) > C(y); }); return;
    case BinaryOp::ge: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) >= C(y); }); return;
    default: break;
  }
}

template <class T>
void activation_backward(BinaryOp op, const Tensor& out, const Tensor& g, const Tensor& v) {
  using C = compute_t<T>;
  auto run = [&](auto f, const F32BinaryKernels* k) { binary_loop<T, T>(out, g, v, f, k); };
  switch (op) {
    case BinaryOp::threshold_backward:
      run([](T x, T y) { return C(y) > C(0) ? x : T(C(0)); }, &k_threshold_backward);
      return;
    case BinaryOp::tanh_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * (C(1) - C(y) * C(y))); }, &k_tanh_backward);
      return;
    case BinaryOp::sigmoid_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * C(y) * (C(1) - C(y))); }, &k_sigmoid_backward);
      return;
    case BinaryOp::gelu_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * vm::gelu_grad(C(y))); }, &k_gelu_backward);
      return;
    case BinaryOp::gelu_tanh_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * vm::gelu_tanh_grad(C(y))); }, &k_gelu_tanh_backward);
      return;
    case BinaryOp::silu_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * vm::silu_grad(C(y))); }, &k_silu_backward);
      return;
    default: break;
  }
}

}  // namespace

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, const Scalar& alpha) {
  const char* name = binary_name(op);
  switch (op) {
    case BinaryOp::eq:
    case BinaryOp::ne:
    case BinaryOp::lt:
    case BinaryOp::le:
    case BinaryOp::gt:
    case BinaryOp::ge: dispatch(a.dtype(), name, [&]<class T>() { compare<T>(op, out, a, b); }); return;
    case BinaryOp::logical_and: binary_loop<bool, bool>(out, a, b, [](bool x, bool y) { return x && y; }); return;
    case BinaryOp::logical_or: binary_loop<bool, bool>(out, a, b, [](bool x, bool y) { return x || y; }); return;
    case BinaryOp::threshold_backward:
    case BinaryOp::tanh_backward:
    case BinaryOp::sigmoid_backward:
    case BinaryOp::gelu_backward:
    case BinaryOp::gelu_tanh_backward:
    case BinaryOp::silu_backward:
      dispatch<kFloatingTypes>(out.dtype(), name, [&]<class T>() { activation_backward<T>(op, out, a, b); });
      return;
    default: dispatch(out.dtype(), name, [&]<class T>() { arith<T>(op, out, a, b, alpha); }); return;
  }
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  std::array<char*, 4> base;
  std::array<Shape, 4> st;
  operands<4>({&out, &cond, &a, &b}, out.shape(), base, st);
  dispatch(out.dtype(), "where", [&]<class T>() {
    strided_loop<4>(out.shape(), base, st, [](std::array<char*, 4> p, const std::array<int64_t, 4>& s, int64_t n) {
      if (s[0] == sizeof(T) && s[1] == 1 && s[2] == sizeof(T) && s[3] == sizeof(T)) {
        T* o = reinterpret_cast<T*>(p[0]);
        const bool* c = reinterpret_cast<const bool*>(p[1]);
        const T* x = reinterpret_cast<const T*>(p[2]);
        const T* y = reinterpret_cast<const T*>(p[3]);
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) =
            c ? *reinterpret_cast<const T*>(p[2] + i * s[2]) : *reinterpret_cast<const T*>(p[3] + i * s[3]);
      }
    });
  });
}

}  // namespace ember::cpu
