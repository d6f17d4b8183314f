// Small pieces of core: dtype names and promotion, devices, shapes, grad mode.
#include <array>
#include <cstdlib>

#include "ember/core/device.hpp"
#include "ember/core/dtype.hpp"
#include "ember/core/error.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/shape.hpp"

namespace ember {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::u8: return "uint8";
    case DType::boolean: return "bool";
  }
  return "unknown";
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  // torch.promote_types, in the enum order f32, f64, f16, bf16, i32, i64, u8, bool.
  using D = DType;
  static constexpr D f4 = D::f32, f8 = D::f64, f2 = D::f16, bf = D::bf16, i4 = D::i32, i8 = D::i64, u1 = D::u8,
                     b1 = D::boolean;
  static constexpr std::array<std::array<D, 8>, 8> table = {{
      /* f32  */ {f4, f8, f4, f4, f4, f4, f4, f4},
      /* f64  */ {f8, f8, f8, f8, f8, f8, f8, f8},
      /* f16  */ {f4, f8, f2, f4, f2, f2, f2, f2},
      /* bf16 */ {f4, f8, f4, bf, bf, bf, bf, bf},
      /* i32  */ {f4, f8, f2, bf, i4, i8, i4, i4},
      /* i64  */ {f4, f8, f2, bf, i8, i8, i8, i8},
      /* u8   */ {f4, f8, f2, bf, i4, i8, u1, u1},
      /* bool */ {f4, f8, f2, bf, i4, i8, u1, b1},
  }};
  return table[static_cast<size_t>(a)][static_cast<size_t>(b)];
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
    char* end = nullptr;
    long idx = std::strtol(s.c_str() + 5, &end, 10);
    if (end && *end == '\0' && idx >= 0 && idx < 1024) return cuda(static_cast<int>(idx));
  }
  EMBER_THROW(ValueError, "device: expected \"cpu\", \"cuda\" or \"cuda:N\", got \"", s, "\"");
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  if (s.size() == 1) out += ",";
  return out + ")";
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1) {
      EMBER_THROW(ShapeError, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                  " cannot be broadcast: dimension ", i, " is ", da, " vs ", db);
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = std::max<int64_t>(ndim, 1);
  if (dim < -n || dim >= n) {
    EMBER_THROW(IndexError, op, ": dimension ", dim, " is out of range for a tensor with ", ndim,
                " dimension(s) (expected in [", -n, ", ", n - 1, "])");
  }
  return dim < 0 ? dim + n : dim;
}

namespace {
thread_local bool t_grad_enabled = true;
}
bool GradMode::is_enabled() { return t_grad_enabled; }
void GradMode::set_enabled(bool enabled) { t_grad_enabled = enabled; }

}  // namespace ember
