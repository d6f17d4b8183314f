#include "ember/nn/batchnorm.hpp"

#include <sstream>

#include "ember/core/grad_mode.hpp"
#include "ember/ops/conv.hpp"

namespace ember::nn {

BatchNormBase::BatchNormBase(int64_t n, BatchNormOptions opts) : num_features(n), options(opts) {
  EMBER_CHECK(n > 0, ValueError, "BatchNorm: num_features must be positive, got ", n);
  EMBER_CHECK(opts.eps >= 0, ValueError, "BatchNorm: eps must be non-negative, got ", opts.eps);
  if (options.affine) {
    weight = ones({n});
    bias = zeros({n});
    register_parameter("weight", weight);
    register_parameter("bias", bias);
  }
  if (options.track_running_stats) {
    running_mean = zeros({n});
    running_var = ones({n});
    num_batches_tracked = zeros({}, {.dtype = kInt64});
    register_buffer("running_mean", running_mean);
    register_buffer("running_var", running_var);
    register_buffer("num_batches_tracked", num_batches_tracked);
  }
}

void BatchNormBase::reset_running_stats() {
  if (!options.track_running_stats) return;
  NoGradGuard ng;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

Tensor BatchNormBase::forward(const Tensor& x) {
  check_input(x);
  // As PyTorch's _BatchNorm.forward: training counts batches, and momentum=None turns the
  // running statistics into a cumulative average.
  double factor = options.momentum.value_or(0.0);
  if (is_training() && options.track_running_stats) {
    {
      NoGradGuard ng;
      num_batches_tracked.add_(1);
    }
    if (!options.momentum) factor = 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
  }
  const bool use_batch_stats = is_training() || !options.track_running_stats;
  const bool pass_running = !is_training() || options.track_running_stats;
  return batch_norm(x, pass_running ? running_mean : Tensor(), pass_running ? running_var : Tensor(), weight, bias,
                    use_batch_stats, factor, options.eps);
}

std::string BatchNormBase::extra_repr() const {
  std::ostringstream os;
  os << num_features << ", eps=" << options.eps << ", momentum=";
  if (options.momentum)
    os << *options.momentum;
  else
    os << "None";
  os << ", affine=" << (options.affine ? "True" : "False")
     << ", track_running_stats=" << (options.track_running_stats ? "True" : "False");
  return os.str();
}

void BatchNorm1d::check_input(const Tensor& x) const {
  EMBER_CHECK(x.dim() == 2 || x.dim() == 3, ShapeError, "BatchNorm1d: expected 2D or 3D input (got ", x.dim(),
              "D input of shape ", shape_str(x.shape()), ")");
}

void BatchNorm2d::check_input(const Tensor& x) const {
  EMBER_CHECK(x.dim() == 4, ShapeError, "BatchNorm2d: expected 4D input (got ", x.dim(), "D input of shape ",
              shape_str(x.shape()), ")");
}

}  // namespace ember::nn
