// Strided copy with dtype conversion, and fill.
#include <cstring>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
#include "loops.hpp"

namespace ember::cpu {

namespace {
template <class D, class S>
inline D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<D, bool>) {
    return static_cast<compute_t<S>>(v) != compute_t<S>(0);
  } else {
    return static_cast<D>(static_cast<compute_t<D>>(static_cast<compute_t<S>>(v)));
  }
}
}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  std::array<char*, 2> base;
  std::array<Shape, 2> st;
  operands<2>({&dst, &src}, dst.shape(), base, st);
  dispatch(dst.dtype(), "copy", [&]<class D>() {
    dispatch(src.dtype(), "copy", [&]<class S>() {
      strided_loop<2>(dst.shape(), base, st, [](std::array<char*, 2> p, const std::array<int64_t, 2>& s, int64_t n) {
        if constexpr (std::is_same_v<D, S>) {
          if (s[0] == sizeof(D) && s[1] == sizeof(S)) {
            std::memcpy(p[0], p[1], static_cast<size_t>(n) * sizeof(D));
            return;
          }
        }
        if (s[0] == sizeof(D) && s[1] == sizeof(S)) {
          D* d = reinterpret_cast<D*>(p[0]);
          const S* x = reinterpret_cast<const S*>(p[1]);
          for (int64_t i = 0; i < n; ++i) d[i] = convert<D>(x[i]);
          return;
        }
        for (int64_t i = 0; i < n; ++i)
          *reinterpret_cast<D*>(p[0] + i * s[0]) = convert<D>(*reinterpret_cast<const S*>(p[1] + i * s[1]));
      });
    });
  });
}

void fill(const Tensor& dst, const Scalar& value) {
  std::array<char*, 1> base;
  std::array<Shape, 1> st;
  operands<1>({&dst}, dst.shape(), base, st);
  dispatch(dst.dtype(), "fill", [&]<class D>() {
    const D v = value.to<D>();
    strided_loop<1>(dst.shape(), base, st, [v](std::array<char*, 1> p, const std::array<int64_t, 1>& s, int64_t n) {
      if (s[0] == sizeof(D)) {
        D* d = reinterpret_cast<D*>(p[0]);
        for (int64_t i = 0; i < n; ++i) d[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<D*>(p[0] + i * s[0]) = v;
      }
    });
  });
}

}  // namespace ember::cpu
