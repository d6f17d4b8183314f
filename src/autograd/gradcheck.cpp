// gradcheck: autograd's gradients against central differences, both in f64.
//
// The scalar being differentiated is L = sum(out * w) for a fixed pseudo-random w. Its
// analytic gradient is one backward pass with grad_output = w (no mul or sum op needed, so
// gradcheck works before the elementwise ops exist); its numeric gradient is
// (L(x + eps e_j) - L(x - eps e_j)) / 2 eps with L accumulated in double on the host.
#include "ember/autograd/gradcheck.hpp"

#include <cmath>
#include <random>
#include <sstream>

#include "ember/autograd/engine.hpp"
#include "ember/core/grad_mode.hpp"

namespace ember::autograd {

namespace {

/// w: values in [-1, -0.25] ∪ [0.25, 1] from a fixed seed, so no output element has a
/// negligible weight and the check is the same on every run.
std::vector<double> fixed_weights(int64_t n) {
  std::mt19937 rng(20240521u);
  std::uniform_real_distribution<double> mag(0.25, 1.0);
  std::vector<double> w(static_cast<size_t>(n));
  for (auto& v : w) v = (rng() & 1u) ? mag(rng) : -mag(rng);
  return w;
}

double weighted_sum(const Tensor& out, const std::vector<double>& w) {
  std::vector<double> v = out.to_vector<double>();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * w[i];
  return s;
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opts) {
  EMBER_CHECK(opts.eps > 0.0, ValueError, "gradcheck: eps must be positive, got ", opts.eps);
  EMBER_CHECK(opts.atol >= 0.0 && opts.rtol >= 0.0, ValueError, "gradcheck: atol and rtol must be non-negative, got ",
              opts.atol, " and ", opts.rtol);

  // Every floating input becomes a fresh f64 copy so that differences are taken in double and
  // the caller's tensors are never touched. Inputs that required grad become f64 leaves.
  std::vector<Tensor> leaves(inputs.size());
  std::vector<bool> checked(inputs.size(), false);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined()) continue;
    if (!is_floating(t.dtype())) {
      leaves[i] = t;
      continue;
    }
    NoGradGuard ng;
    Tensor c = t.detach().to(kFloat64);
    leaves[i] = c.is_same(t) || c.shares_storage(t) ? t.detach().clone() : c;
    if (!leaves[i].is_contiguous()) leaves[i] = leaves[i].clone();
    checked[i] = t.requires_grad();
  }
  bool any_checked = false;
  for (bool c : checked) any_checked = any_checked || c;
  EMBER_CHECK(any_checked, ValueError,
              "gradcheck: no input requires grad; call requires_grad_() on the inputs to check");
  for (size_t i = 0; i < leaves.size(); ++i)
    if (checked[i]) leaves[i].requires_grad_(true);

  // ---------------------------------------------------------------- analytic
  Tensor out;
  {
    EnableGradGuard eg;
    out = fn(leaves);
  }
  EMBER_CHECK(out.defined(), ValueError, "gradcheck: fn returned an undefined tensor");
  EMBER_CHECK(is_floating(out.dtype()), DTypeError, "gradcheck: fn must return a floating-point tensor, got ",
              dtype_name(out.dtype()));
  const std::vector<double> w = fixed_weights(out.numel());
  const Shape out_shape = out.shape();

  std::vector<Tensor> grad_inputs;
  std::vector<size_t> grad_index;
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!checked[i]) continue;
    grad_inputs.push_back(leaves[i]);
    grad_index.push_back(i);
  }
  std::vector<Tensor> analytic(grad_inputs.size());
  if (out.requires_grad()) {
    Tensor wt = tensor<double>(w, {out.numel()}).reshape(out_shape).to(out.device(), out.dtype());
    analytic = grad({out}, grad_inputs, {wt}, /*retain_graph=*/false, /*allow_unused=*/true);
  }

  // ---------------------------------------------------------------- numeric
  // Separate copies that do not require grad: the analytic graph above holds the leaves.
  std::vector<Tensor> probe(leaves.size());
  for (size_t i = 0; i < leaves.size(); ++i) probe[i] = leaves[i].defined() ? leaves[i].detach() : Tensor();
  std::vector<Tensor> host(leaves.size());
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!checked[i]) continue;
    NoGradGuard ng;
    host[i] = leaves[i].detach().to(Device::cpu()).clone();
    probe[i] = host[i].to(leaves[i].device());
  }
  auto evaluate = [&](size_t i) {
    NoGradGuard ng;
    if (!leaves[i].is_cpu()) probe[i] = host[i].to(leaves[i].device());
    Tensor o = fn(probe);
    EMBER_CHECK(o.shape() == out_shape, ShapeError, "gradcheck: fn returned shape ", shape_str(o.shape()),
                " on a perturbed input but ", shape_str(out_shape), " the first time");
    return weighted_sum(o, w);
  };

  for (size_t k = 0; k < grad_inputs.size(); ++k) {
    const size_t i = grad_index[k];
    const Tensor& a = analytic[k];
    if (a.defined()) {
      if (a.shape() != leaves[i].shape()) {
        return {false, detail::str_cat("gradcheck: input ", i, ": analytic gradient has shape ", shape_str(a.shape()),
                                       " but the input has shape ", shape_str(leaves[i].shape()))};
      }
    }
    // An undefined gradient means "does not affect the output": it is checked as zeros.
    const std::vector<double> av = a.defined() ? a.to_vector<double>() : std::vector<double>(leaves[i].numel(), 0.0);
    double* x = host[i].data<double>();
    for (int64_t j = 0; j < leaves[i].numel(); ++j) {
      const double orig = x[j];
      x[j] = orig + opts.eps;
      const double fp = evaluate(i);
      x[j] = orig - opts.eps;
      const double fm = evaluate(i);
      x[j] = orig;
      const double numeric = (fp - fm) / (2.0 * opts.eps);
      const double analytic_v = av[static_cast<size_t>(j)];
      const double diff = std::abs(analytic_v - numeric);
      const double tol = opts.atol + opts.rtol * std::abs(numeric);
      const bool finite = std::isfinite(analytic_v) && std::isfinite(numeric);
      if (!finite || !(diff <= tol)) {
        return {false, detail::str_cat("gradcheck: input ", i, " (shape ", shape_str(leaves[i].shape()), "), element ",
                                       j, ": analytic ", fmt(analytic_v), " vs numeric ", fmt(numeric),
                                       finite ? "" : " (not finite)", "; |diff| ", fmt(diff), " > tolerance ", fmt(tol),
                                       a.defined() ? "" : " (autograd gave no gradient for this input)")};
      }
    }
    if (!leaves[i].is_cpu()) probe[i] = host[i].to(leaves[i].device());
  }
  return {true, ""};
}

}  // namespace ember::autograd
