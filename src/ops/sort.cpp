// Sorting and selection: sort, argsort, topk, and multinomial sampling.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/ops/indexing.hpp"
#include "indexing_checks.hpp"

namespace ember {

namespace {
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

/// A fresh contiguous copy of v on its device (no autograd).
Tensor fresh_copy(const Tensor& v) {
  Tensor out = empty(v.shape(), {.dtype = v.dtype(), .device = v.device()});
  if (v.is_cuda()) {
    NoGradGuard ng;
    out.copy_(v);
  } else {
    cpu::copy(out, v);
  }
  return out;
}

/// x with `dim` moved last, as a fresh contiguous tensor (no autograd). 0-d becomes (1,).
Tensor rows_last(const Tensor& x, int64_t dim) {
  Tensor v = x.dim() == 0 ? x.detach().reshape({1}) : x.detach().transpose(dim, -1);
  return fresh_copy(v);
}

/// The inverse of rows_last for a result whose last dim has a new size: a fresh contiguous
/// tensor in x's layout with `dim` of size `k` (0-d when x was 0-d).
Tensor rows_back(const Tensor& rows, const Tensor& x, int64_t dim) {
  // A 0-d input gives 0-d results, except for topk with k = 0, which keeps the empty (0,).
  Tensor v = x.dim() == 0 ? (rows.numel() == 1 ? rows.reshape({}) : rows) : rows.transpose(dim, -1);
  return fresh_copy(v);
}

/// Values taken at `indices` along dim: the gradient goes back to those positions.
void record_selection(const char* name, const Tensor& x, const Tensor& values, const Tensor& indices, int64_t dim) {
  const Shape x_shape = x.shape();
  autograd::record(name, {x}, values, [si = SavedTensor(indices), dim, x_shape](const Grads& g, const Needs&) {
    Tensor r = zeros(x_shape, {.dtype = g[0].dtype(), .device = g[0].device()});
    const Tensor idx = si.get();
    if (x_shape.empty()) {
      detail::scatter_add_any(r.reshape({1}), 0, idx.reshape({-1}), g[0].reshape({-1}));
    } else {
      detail::scatter_add_any(r, dim, idx, g[0]);
    }
    return Grads{r};
  });
}
}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  EMBER_CHECK(x.defined(), ValueError, "sort: got an undefined tensor");
  dim = wrap_dim(dim, x.dim(), "sort");
  Tensor rows = rows_last(x, dim);
  Tensor idx = empty(rows.shape(), {.dtype = kInt64, .device = x.device()});
  if (x.is_cuda()) {
    Tensor sorted = empty(rows.shape(), {.dtype = x.dtype(), .device = x.device()});
    cuda_backend::sort_rows(sorted, idx, rows, descending);
    rows = sorted;
  } else {
    cpu::sort_rows(rows, idx, descending);
  }
  Tensor values = rows_back(rows, x, dim), indices = rows_back(idx, x, dim);
  if (is_floating(x.dtype())) record_selection("SortBackward", x, values, indices, dim);
  return {values, indices};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  NoGradGuard ng;
  return sort(x, dim, descending).second;
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  // The kernel always returns the k elements in order, which satisfies sorted = false too.
  (void)sorted;
  EMBER_CHECK(x.defined(), ValueError, "topk: got an undefined tensor");
  EMBER_CHECK(x.dtype() != kBool, DTypeError, "topk: dtype bool is not supported");
  dim = wrap_dim(dim, x.dim(), "topk");
  const int64_t n = x.dim() == 0 ? 1 : x.size(dim);
  EMBER_CHECK(k >= 0 && k <= n, ValueError, "topk: k = ", k, " is out of range for dimension ", dim, " of size ", n,
              " (input shape ", shape_str(x.shape()), ")");
  Tensor rows = rows_last(x, dim);
  Shape out_shape = rows.shape();
  out_shape.back() = k;
  Tensor v, i;
  if (x.is_cuda()) {
    // A full stable sort in the direction of `largest` puts the CPU's top k first, in its
    // order (NaNs leading for largest, trailing otherwise; ties by position).
    Tensor sv = empty(rows.shape(), {.dtype = x.dtype(), .device = x.device()});
    Tensor si = empty(rows.shape(), {.dtype = kInt64, .device = x.device()});
    cuda_backend::sort_rows(sv, si, rows, largest);
    v = sv.narrow(-1, 0, k);
    i = si.narrow(-1, 0, k);
  } else {
    v = empty(out_shape, {.dtype = x.dtype()});
    i = empty(out_shape, {.dtype = kInt64});
    cpu::topk_rows(v, i, rows, k, largest);
  }
  Tensor values = rows_back(v, x, dim), indices = rows_back(i, x, dim);
  if (is_floating(x.dtype())) record_selection("TopkBackward", x, values, indices, dim);
  return {values, indices};
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator* gen) {
  EMBER_CHECK(probs.defined(), ValueError, "multinomial: got an undefined tensor");
  EMBER_CHECK(is_floating(probs.dtype()), DTypeError, "multinomial: probs must be a floating-point tensor, got ",
              dtype_name(probs.dtype()));
  EMBER_CHECK(probs.dim() == 1 || probs.dim() == 2, ShapeError, "multinomial: probs must be 1-d or 2-d, got shape ",
              shape_str(probs.shape()));
  EMBER_CHECK(num_samples > 0, ValueError, "multinomial: num_samples must be positive, got ", num_samples);
  const int64_t rows = probs.dim() == 1 ? 1 : probs.size(0);
  const int64_t cats = probs.size(-1);
  EMBER_CHECK(cats > 0, ValueError, "multinomial: probs has no categories (shape ", shape_str(probs.shape()), ")");
  if (probs.is_cuda()) {
    // Same validation, messages and draws as below (kernels/sort.cu).
    NoGradGuard ng;
    Tensor out = cuda_backend::multinomial(probs.detach().reshape({rows, cats}), num_samples, replacement,
                                           gen ? *gen : default_generator());
    return probs.dim() == 1 ? out.reshape({num_samples}) : out;
  }

  Tensor w = empty({rows, cats}, {.dtype = kFloat64});
  cpu::copy(w, probs.detach().reshape({rows, cats}));
  const double* wp = w.data<double>();
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0;
    int64_t nonzero = 0;
    for (int64_t c = 0; c < cats; ++c) {
      const double p = wp[r * cats + c];
      EMBER_CHECK(std::isfinite(p) && p >= 0, ValueError,
                  "multinomial: probabilities must be finite and non-negative, got ", p, " at row ", r, ", category ",
                  c);
      total += p;
      nonzero += p > 0;
    }
    EMBER_CHECK(total > 0, ValueError, "multinomial: row ", r, " of probs sums to zero");
    EMBER_CHECK(replacement || num_samples <= nonzero, ValueError, "multinomial: cannot draw ", num_samples,
                " samples without replacement from row ", r, ", which has only ", nonzero,
                " categories of non-zero probability");
  }

  Tensor out = empty(probs.dim() == 1 ? Shape{num_samples} : Shape{rows, num_samples}, {.dtype = kInt64});
  int64_t* o = out.data<int64_t>();
  Generator& g = gen ? *gen : default_generator();
  // Every draw takes two consecutive 32-bit words (a 53-bit uniform); word w lives in counter
  // offset + w / 4, lane w % 4, so pairs never straddle two counters.
  const int64_t draws_per_row = replacement ? num_samples : cats;
  const GeneratorState st = g.reserve(static_cast<uint64_t>(2 * rows * draws_per_row));
  auto uniform = [&](int64_t draw) {
    uint32_t words[4];
    Philox::generate(st.seed, st.offset + static_cast<uint64_t>(draw / 2), 0, words);
    const int lane = static_cast<int>(draw % 2) * 2;
    return Philox::uniform_double(words[lane], words[lane + 1]);
  };

  std::vector<double> cdf(static_cast<size_t>(cats));
  std::vector<std::pair<double, int64_t>> keys(static_cast<size_t>(cats));
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = wp + r * cats;
    if (replacement) {
      // Inverse CDF: the first category whose cumulative weight exceeds u * total.
      std::partial_sum(row, row + cats, cdf.begin());
      const double total = cdf.back();
      int64_t last = cats - 1;
      while (row[last] == 0) --last;
      for (int64_t s = 0; s < num_samples; ++s) {
        const double target = uniform(r * num_samples + s) * total;
        const int64_t c = std::upper_bound(cdf.begin(), cdf.end(), target) - cdf.begin();
        o[r * num_samples + s] = std::min(c, last);
      }
    } else {
      // Efraimidis–Spirakis: key_c = log(u_c) / w_c; the largest num_samples keys, in order,
      // are distributed as successive draws without replacement.
      for (int64_t c = 0; c < cats; ++c) {
        const double u = 1.0 - uniform(r * cats + c);  // in (0, 1]
        keys[c] = {row[c] > 0 ? std::log(u) / row[c] : -INFINITY, c};
      }
      std::partial_sort(keys.begin(), keys.begin() + num_samples, keys.end(), [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      });
      for (int64_t s = 0; s < num_samples; ++s) o[r * num_samples + s] = keys[s].second;
    }
  }
  return out;
}

}  // namespace ember
