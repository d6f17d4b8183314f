// Tensor::str() and operator<<, following PyTorch's torch/_tensor_str.py with its default
// print options (precision 4, linewidth 80, threshold 1000, edgeitems 3), so that output can
// be compared with PyTorch's by eye or by string.
//
// Float formatting is decided once per tensor from its non-zero finite values (only the edge
// items when summarising):
//   all integers  → "1." style, unless max/min > 1000 or max > 1e8 (then scientific);
//   otherwise     → fixed "%.4f", unless max/min > 1000, max > 1e8 or min < 1e-4 (then "%.4e").
// Every element is right-aligned to the widest formatted value.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ember/autograd/node.hpp"
#include "ember/core/grad_mode.hpp"

namespace ember {

namespace {

constexpr int kPrecision = 4;
constexpr int64_t kLineWidth = 80;
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;

std::string printf_double(const char* spec, double v) {
  if (std::isnan(v)) return "nan";  // printf may write "-nan"; Python never does
  const int n = std::snprintf(nullptr, 0, spec, v);
  std::string s(static_cast<size_t>(n), '\0');
  std::snprintf(s.data(), s.size() + 1, spec, v);
  return s;
}

/// Reads element `off` (in elements from the tensor's first element) as double or int64.
struct Reader {
  const char* base;
  DType dtype;

  double as_double(int64_t off) const {
    switch (dtype) {
      case DType::f32: return reinterpret_cast<const float*>(base)[off];
      case DType::f64: return reinterpret_cast<const double*>(base)[off];
      case DType::f16: return static_cast<float>(reinterpret_cast<const Half*>(base)[off]);
      case DType::bf16: return static_cast<float>(reinterpret_cast<const BFloat16*>(base)[off]);
      default: return static_cast<double>(as_int(off));
    }
  }
  int64_t as_int(int64_t off) const {
    switch (dtype) {
      case DType::i32: return reinterpret_cast<const int32_t*>(base)[off];
      case DType::i64: return reinterpret_cast<const int64_t*>(base)[off];
      case DType::u8: return reinterpret_cast<const uint8_t*>(base)[off];
      case DType::boolean: return reinterpret_cast<const bool*>(base)[off] ? 1 : 0;
      default: return static_cast<int64_t>(as_double(off));
    }
  }
};

/// PyTorch's _Formatter: one width and one style for the whole tensor.
class Formatter {
 public:
  explicit Formatter(DType dtype) : floating_(is_floating(dtype)), boolean_(dtype == kBool) {}

  /// Feeds one value that will be printed (all of them, or the edge items when summarising).
  void observe(const Reader& r, int64_t off) {
    if (floating_) {
      const double v = r.as_double(off);
      if (std::isfinite(v) && v != 0.0) finite_.push_back(v);
    } else {
      max_width_ = std::max(max_width_, static_cast<int64_t>(format_int(r.as_int(off)).size()));
    }
  }

  /// Decides the float style once every value has been observed.
  void finish() {
    if (!floating_ || finite_.empty()) return;
    double mn = std::abs(finite_[0]), mx = mn;
    for (double v : finite_) {
      mn = std::min(mn, std::abs(v));
      mx = std::max(mx, std::abs(v));
      if (v != std::ceil(v)) int_mode_ = false;
    }
    const std::string e_spec = "%." + std::to_string(kPrecision) + "e";
    const std::string f_spec = "%." + std::to_string(kPrecision) + "f";
    if (int_mode_) {
      sci_mode_ = mx / mn > 1000.0 || mx > 1.0e8;
      for (double v : finite_) {
        const int64_t len = sci_mode_ ? static_cast<int64_t>(printf_double(e_spec.c_str(), v).size())
                                      : static_cast<int64_t>(printf_double("%.0f", v).size()) + 1;
        max_width_ = std::max(max_width_, len);
      }
    } else {
      sci_mode_ = mx / mn > 1000.0 || mx > 1.0e8 || mn < 1.0e-4;
      for (double v : finite_) {
        max_width_ =
            std::max(max_width_, static_cast<int64_t>(printf_double((sci_mode_ ? e_spec : f_spec).c_str(), v).size()));
      }
    }
    finite_.clear();
  }

  int64_t width() const { return max_width_; }

  std::string format(const Reader& r, int64_t off) const {
    std::string s;
    if (floating_) {
      const double v = r.as_double(off);
      if (sci_mode_) {
        s = printf_double(("%." + std::to_string(kPrecision) + "e").c_str(), v);
      } else if (int_mode_) {
        s = printf_double("%.0f", v);
        if (std::isfinite(v)) s += ".";
      } else {
        s = printf_double(("%." + std::to_string(kPrecision) + "f").c_str(), v);
      }
    } else {
      s = format_int(r.as_int(off));
    }
    const int64_t pad = max_width_ - static_cast<int64_t>(s.size());
    return pad > 0 ? std::string(static_cast<size_t>(pad), ' ') + s : s;
  }

 private:
  std::string format_int(int64_t v) const { return boolean_ ? (v ? "True" : "False") : std::to_string(v); }

  bool floating_, boolean_;
  bool int_mode_ = true, sci_mode_ = false;
  int64_t max_width_ = 1;
  std::vector<double> finite_;
};

class Printer {
 public:
  Printer(const Tensor& t, bool summarize)
      : reader_{static_cast<const char*>(t.data_ptr()), t.dtype()},
        shape_(t.shape()),
        strides_(t.strides()),
        summarize_(summarize),
        formatter_(t.dtype()) {
    observe(0, 0);
    formatter_.finish();
  }

  std::string render(int64_t indent) const { return render_dim(0, 0, indent); }

 private:
  /// Indices printed along dimension d: all, or the first and last kEdgeItems (-1 marks "...").
  std::vector<int64_t> indices(int64_t d) const {
    const int64_t n = shape_[d];
    std::vector<int64_t> idx;
    if (summarize_ && n > 2 * kEdgeItems) {
      for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
      idx.push_back(-1);
      for (int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
    } else {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    }
    return idx;
  }

  void observe(int64_t d, int64_t off) {
    if (d == static_cast<int64_t>(shape_.size())) {
      formatter_.observe(reader_, off);
      return;
    }
    for (int64_t i : indices(d))
      if (i >= 0) observe(d + 1, off + i * strides_[d]);
  }

  std::string render_dim(int64_t d, int64_t off, int64_t indent) const {
    const int64_t nd = static_cast<int64_t>(shape_.size());
    if (nd == 0) return formatter_.format(reader_, off);
    if (d == nd - 1) return render_vector(off, indent);
    std::vector<std::string> slices;
    for (int64_t i : indices(d)) {
      slices.push_back(i < 0 ? std::string("...") : render_dim(d + 1, off + i * strides_[d], indent + 1));
    }
    const std::string sep =
        "," + std::string(static_cast<size_t>(nd - d - 1), '\n') + std::string(static_cast<size_t>(indent + 1), ' ');
    std::string out = "[";
    for (size_t k = 0; k < slices.size(); ++k) out += (k ? sep : "") + slices[k];
    return out + "]";
  }

  std::string render_vector(int64_t off, int64_t indent) const {
    const int64_t d = static_cast<int64_t>(shape_.size()) - 1;
    const int64_t element_length = formatter_.width() + 2;
    const int64_t per_line = std::max<int64_t>(1, (kLineWidth - indent) / element_length);
    std::vector<std::string> data;
    for (int64_t i : indices(d))
      data.push_back(i < 0 ? std::string(" ...") : formatter_.format(reader_, off + i * strides_[d]));
    std::string out = "[";
    for (size_t k = 0; k < data.size(); ++k) {
      if (k > 0)
        out +=
            k % static_cast<size_t>(per_line) == 0 ? ",\n" + std::string(static_cast<size_t>(indent + 1), ' ') : ", ";
      out += data[k];
    }
    return out + "]";
  }

  Reader reader_;
  Shape shape_, strides_;
  bool summarize_;
  Formatter formatter_;
};

/// PyTorch's _add_suffixes: ", suffix" while the line stays within kLineWidth, else a new line.
std::string add_suffixes(std::string s, const std::vector<std::string>& suffixes, int64_t indent) {
  const size_t nl = s.rfind('\n');
  int64_t last_line_len =
      static_cast<int64_t>(s.size()) - (nl == std::string::npos ? -1 : static_cast<int64_t>(nl)) + 1;
  for (const auto& suffix : suffixes) {
    const int64_t len = static_cast<int64_t>(suffix.size());
    if (last_line_len + len + 2 > kLineWidth) {
      s += ",\n" + std::string(static_cast<size_t>(indent), ' ') + suffix;
      last_line_len = indent + len;
    } else {
      s += ", " + suffix;
      last_line_len += len + 2;
    }
  }
  return s + ")";
}

std::string shape_tuple(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  const std::string prefix = "tensor(";
  const int64_t indent = static_cast<int64_t>(prefix.size());
  std::vector<std::string> suffixes;
  if (!is_cpu()) suffixes.push_back("device='" + device().str() + "'");

  std::string body;
  const bool default_dtype = dtype() == kFloat32 || dtype() == kInt64 || dtype() == kBool;
  if (numel() == 0) {
    if (dim() != 1) suffixes.push_back("size=" + shape_tuple(shape()));
    if (dtype() != kFloat32) suffixes.push_back(std::string("dtype=torch.") + dtype_name(dtype()));
    body = "[]";
  } else {
    if (!default_dtype) suffixes.push_back(std::string("dtype=torch.") + dtype_name(dtype()));
    Tensor host;
    {
      NoGradGuard ng;
      host = is_cpu() ? detach() : detach().to(Device::cpu());
    }
    body = Printer(host, numel() > kThreshold).render(indent);
  }

  if (grad_fn())
    suffixes.push_back("grad_fn=<" + grad_fn()->name() + ">");
  else if (requires_grad())
    suffixes.push_back("requires_grad=True");
  return add_suffixes(prefix + body, suffixes, indent);
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ember
