#include "ember/nn/conv.hpp"

#include <cmath>
#include <sstream>

#include "ember/nn/init.hpp"

namespace ember::nn {

namespace {
std::string tuple_str(IntPair p) {
  std::ostringstream os;  // not "(" + std::to_string(...): GCC 12 warns falsely (-Wrestrict)
  os << '(' << p.h << ", " << p.w << ')';
  return os.str();
}
}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, IntPair kernel, Conv2dOptions opts)
    : in_channels(in), out_channels(out), kernel_size(kernel), options(opts) {
  EMBER_CHECK(in > 0 && out > 0, ValueError, "Conv2d: in_channels and out_channels must be positive, got ", in, " and ",
              out);
  EMBER_CHECK(kernel.h > 0 && kernel.w > 0, ValueError, "Conv2d: kernel_size must be positive, got ",
              tuple_str(kernel));
  EMBER_CHECK(opts.groups > 0, ValueError, "Conv2d: groups must be positive, got ", opts.groups);
  EMBER_CHECK(in % opts.groups == 0, ValueError, "Conv2d: in_channels (", in, ") must be divisible by groups (",
              opts.groups, ")");
  EMBER_CHECK(out % opts.groups == 0, ValueError, "Conv2d: out_channels (", out, ") must be divisible by groups (",
              opts.groups, ")");
  EMBER_CHECK(opts.stride.h > 0 && opts.stride.w > 0, ValueError, "Conv2d: stride must be positive, got ",
              tuple_str(opts.stride));
  EMBER_CHECK(opts.dilation.h > 0 && opts.dilation.w > 0, ValueError, "Conv2d: dilation must be positive, got ",
              tuple_str(opts.dilation));
  EMBER_CHECK(opts.padding.h >= 0 && opts.padding.w >= 0, ValueError, "Conv2d: padding must be non-negative, got ",
              tuple_str(opts.padding));
  weight = empty({out, in / opts.groups, kernel.h, kernel.w});
  register_parameter("weight", weight);
  if (opts.bias) {
    bias = empty({out});
    register_parameter("bias", bias);
  }
  reset_parameters();
}

void Conv2d::reset_parameters() {
  // PyTorch's _ConvNd.reset_parameters: kaiming_uniform(a = sqrt(5)) gives U(±1/sqrt(fan_in)),
  // and the bias uses the same bound.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const int64_t fan_in = init::fan_in_and_fan_out(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

std::string Conv2d::extra_repr() const {
  std::string s = std::to_string(in_channels) + ", " + std::to_string(out_channels);
  s += ", kernel_size=" + tuple_str(kernel_size) + ", stride=" + tuple_str(options.stride);
  if (options.padding != IntPair(0)) s += ", padding=" + tuple_str(options.padding);
  if (options.dilation != IntPair(1)) s += ", dilation=" + tuple_str(options.dilation);
  if (options.groups != 1) s += ", groups=" + std::to_string(options.groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

}  // namespace ember::nn
