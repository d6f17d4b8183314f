// Indexing kernels: index_select / index_add, gather / scatter_add, masked_fill, triangles,
// one_hot.
//
// The along-a-dimension ops share one trick: iterate over the shape of the result (or of the
// index), give the indexed tensor stride 0 along `dim` and the index tensor stride 0 along
// every other dim, then add `index * stride_along_dim` inside the loop. strided_loop then
// handles any layout, coalesces dims and splits the work across threads.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
#include "loops.hpp"

namespace ember::cpu {

namespace {

constexpr unsigned kIndexTypes = kSetI32 | kSetI64;

Shape byte_strides(const Tensor& t) {
  Shape s = t.strides();
  for (int64_t& v : s) v *= static_cast<int64_t>(t.element_size());
  return s;
}

/// Run on one thread: scatter-style kernels may write one element from several iterations.
constexpr int64_t kSerial = std::numeric_limits<int64_t>::max() / 4;  // no overflow in parallel_for

/// Iterates over `shape` with out (operand 0), data (operand 1, stride 0 along dim) and the
/// index (operand 2), calling `op(out_ptr, data_ptr_at_index)` per element. `data_dim_bytes`
/// is data's byte stride along dim. `serial` forbids threading (accumulating kernels).
template <class T, class I, class Op>
void along_dim_loop(const Shape& shape, char* out, const Shape& out_st, char* data, const Shape& data_st, char* index,
                    const Shape& index_st, int64_t data_dim_bytes, bool serial, Op op) {
  std::array<char*, 3> base{out, data, index};
  std::array<Shape, 3> st{out_st, data_st, index_st};
  strided_loop<3>(
      shape, base, st,
      [&](std::array<char*, 3> p, const std::array<int64_t, 3>& s, int64_t n) {
        if (s[2] == 0) {
          // One index for the whole row (e.g. embedding rows): hoist it.
          char* src = p[1] + static_cast<int64_t>(*reinterpret_cast<const I*>(p[2])) * data_dim_bytes;
          if (s[0] == sizeof(T) && s[1] == sizeof(T)) {
            // Contiguous rows: a plain loop the compiler vectorises.
            T* a = reinterpret_cast<T*>(p[0]);
            T* b = reinterpret_cast<T*>(src);
            for (int64_t i = 0; i < n; ++i) op(a + i, b + i);
            return;
          }
          for (int64_t i = 0; i < n; ++i)
            op(reinterpret_cast<T*>(p[0] + i * s[0]), reinterpret_cast<T*>(src + i * s[1]));
          return;
        }
        for (int64_t i = 0; i < n; ++i) {
          const int64_t idx = static_cast<int64_t>(*reinterpret_cast<const I*>(p[2] + i * s[2]));
          op(reinterpret_cast<T*>(p[0] + i * s[0]), reinterpret_cast<T*>(p[1] + i * s[1] + idx * data_dim_bytes));
        }
      },
      serial ? kSerial : kGrain);
}

template <class T>
inline void add_into(T* dst, const T* src) {
  if constexpr (std::is_same_v<T, bool>) {
    *dst = *dst || *src;
  } else {
    *dst = static_cast<T>(static_cast<compute_t<T>>(*dst) + static_cast<compute_t<T>>(*src));
  }
}

}  // namespace

std::pair<int64_t, int64_t> index_min_max(const Tensor& index) {
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  if (index.numel() == 0) return {0, -1};
  std::array<char*, 1> base{static_cast<char*>(index.data_ptr())};
  std::array<Shape, 1> st{byte_strides(index)};
  dispatch<kIndexTypes>(index.dtype(), "index", [&]<class I>() {
    strided_loop<1>(
        index.shape(), base, st,
        [&](std::array<char*, 1> p, const std::array<int64_t, 1>& s, int64_t n) {
          for (int64_t i = 0; i < n; ++i) {
            const int64_t v = static_cast<int64_t>(*reinterpret_cast<const I*>(p[0] + i * s[0]));
            lo = std::min(lo, v);
            hi = std::max(hi, v);
          }
        },
        kSerial);
  });
  return {lo, hi};
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  Shape x_st = byte_strides(x);
  const int64_t x_dim_bytes = x_st[dim];
  x_st[dim] = 0;
  Shape idx_st(out.dim(), 0);
  idx_st[dim] = index.dim() == 0 ? 0 : index.stride(0) * static_cast<int64_t>(index.element_size());
  dispatch(x.dtype(), "index_select", [&]<class T>() {
    dispatch<kIndexTypes>(index.dtype(), "index_select", [&]<class I>() {
      along_dim_loop<T, I>(out.shape(), static_cast<char*>(out.data_ptr()), byte_strides(out),
                           static_cast<char*>(x.data_ptr()), x_st, static_cast<char*>(index.data_ptr()), idx_st,
                           x_dim_bytes, false, [](T* o, const T* v) { *o = *v; });
    });
  });
}

void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  // Iterate over src's shape; out plays the indexed role.
  Shape out_st = byte_strides(out);
  const int64_t out_dim_bytes = out_st[dim];
  out_st[dim] = 0;
  Shape idx_st(src.dim(), 0);
  idx_st[dim] = index.dim() == 0 ? 0 : index.stride(0) * static_cast<int64_t>(index.element_size());
  dispatch(out.dtype(), "index_add", [&]<class T>() {
    dispatch<kIndexTypes>(index.dtype(), "index_add", [&]<class I>() {
      along_dim_loop<T, I>(src.shape(), static_cast<char*>(src.data_ptr()), byte_strides(src),
                           static_cast<char*>(out.data_ptr()), out_st, static_cast<char*>(index.data_ptr()), idx_st,
                           out_dim_bytes, true, [](T* s, T* o) { add_into(o, s); });
    });
  });
}

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  Shape x_st = byte_strides(x);
  const int64_t x_dim_bytes = x.dim() == 0 ? 0 : x_st[dim];
  if (x.dim() > 0) x_st[dim] = 0;
  dispatch(x.dtype(), "gather", [&]<class T>() {
    dispatch<kIndexTypes>(index.dtype(), "gather", [&]<class I>() {
      along_dim_loop<T, I>(index.shape(), static_cast<char*>(out.data_ptr()), byte_strides(out),
                           static_cast<char*>(x.data_ptr()), x_st, static_cast<char*>(index.data_ptr()),
                           byte_strides(index), x_dim_bytes, false, [](T* o, const T* v) { *o = *v; });
    });
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  Shape out_st = byte_strides(out);
  const int64_t out_dim_bytes = out.dim() == 0 ? 0 : out_st[dim];
  if (out.dim() > 0) out_st[dim] = 0;
  dispatch(out.dtype(), "scatter_add", [&]<class T>() {
    dispatch<kIndexTypes>(index.dtype(), "scatter_add", [&]<class I>() {
      along_dim_loop<T, I>(index.shape(), static_cast<char*>(src.data_ptr()), byte_strides(src),
                           static_cast<char*>(out.data_ptr()), out_st, static_cast<char*>(index.data_ptr()),
                           byte_strides(index), out_dim_bytes, true, [](T* s, T* o) { add_into(o, s); });
    });
  });
}

void masked_fill(const Tensor& out, const Tensor& mask, const Scalar& value) {
  std::array<char*, 2> base;
  std::array<Shape, 2> st;
  operands<2>({&out, &mask}, out.shape(), base, st);
  dispatch(out.dtype(), "masked_fill", [&]<class T>() {
    const T v = value.to<T>();
    strided_loop<2>(out.shape(), base, st, [v](std::array<char*, 2> p, const std::array<int64_t, 2>& s, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        if (*reinterpret_cast<const bool*>(p[1] + i * s[1])) *reinterpret_cast<T*>(p[0] + i * s[0]) = v;
    });
  });
}

void triangle_zero(const Tensor& out, int64_t diagonal, bool upper) {
  const int64_t nd = out.dim();
  const int64_t rows = out.size(nd - 2), cols = out.size(nd - 1);
  if (out.numel() == 0) return;
  const int64_t rs = out.stride(nd - 2), cs = out.stride(nd - 1);
  const Shape batch_shape(out.shape().begin(), out.shape().end() - 2);
  const Shape batch_strides(out.strides().begin(), out.strides().end() - 2);
  const int64_t batches = numel_of(batch_shape);
  dispatch(out.dtype(), "triangle", [&]<class T>() {
    T* base = static_cast<T*>(out.data_ptr());
    parallel_for(batches * rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)),
                 [&](int64_t b0, int64_t b1) {
                   for (int64_t br = b0; br < b1; ++br) {
                     int64_t b = br / rows, i = br % rows, off = 0;
                     for (int64_t d = static_cast<int64_t>(batch_shape.size()) - 1; d >= 0; --d) {
                       off += (b % batch_shape[d]) * batch_strides[d];
                       b /= batch_shape[d];
                     }
                     T* row = base + off + i * rs;
                     // triu keeps j - i >= diagonal; tril keeps j - i <= diagonal.
                     int64_t lo, hi;
                     if (upper) {
                       lo = 0;
                       hi = std::clamp<int64_t>(i + diagonal, 0, cols);
                     } else {
                       lo = std::clamp<int64_t>(i + diagonal + 1, 0, cols);
                       hi = cols;
                     }
                     for (int64_t j = lo; j < hi; ++j) row[j * cs] = T(0);
                   }
                 });
  });
}

void one_hot(const Tensor& out, const Tensor& index) {
  const int64_t n = index.numel();
  if (n == 0) return;
  const int64_t classes = out.size(-1);
  int64_t* o = out.data<int64_t>();
  dispatch<kIndexTypes>(index.dtype(), "one_hot", [&]<class I>() {
    const I* idx = static_cast<const I*>(index.data_ptr());
    for (int64_t i = 0; i < n; ++i) o[i * classes + static_cast<int64_t>(idx[i])] = 1;
  });
}

}  // namespace ember::cpu
