#include "ember/nn/pooling.hpp"

#include <sstream>

namespace ember::nn {

namespace {
// PyTorch prints the argument as given; a square pair reads as the single int it usually was.
std::string arg_str(IntPair p) {
  if (p.h == p.w) return std::to_string(p.h);
  std::ostringstream os;  // not "(" + std::to_string(...): GCC 12 warns falsely (-Wrestrict)
  os << '(' << p.h << ", " << p.w << ')';
  return os.str();
}
}  // namespace

MaxPool2d::MaxPool2d(IntPair kernel, MaxPool2dOptions opts) : kernel_size(kernel), options(opts) {
  EMBER_CHECK(kernel.h > 0 && kernel.w > 0, ValueError, "MaxPool2d: kernel_size must be positive, got ",
              arg_str(kernel));
}

Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, kernel_size, options.stride, options.padding, options.dilation, options.ceil_mode);
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + arg_str(kernel_size) + ", stride=" + arg_str(options.stride.value_or(kernel_size)) +
         ", padding=" + arg_str(options.padding) + ", dilation=" + arg_str(options.dilation) +
         ", ceil_mode=" + (options.ceil_mode ? "True" : "False");
}

AvgPool2d::AvgPool2d(IntPair kernel, AvgPool2dOptions opts) : kernel_size(kernel), options(opts) {
  EMBER_CHECK(kernel.h > 0 && kernel.w > 0, ValueError, "AvgPool2d: kernel_size must be positive, got ",
              arg_str(kernel));
}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_size, options.stride, options.padding, options.ceil_mode, options.count_include_pad);
}

std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + arg_str(kernel_size) + ", stride=" + arg_str(options.stride.value_or(kernel_size)) +
         ", padding=" + arg_str(options.padding);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(IntPair out) : output_size(out) {
  EMBER_CHECK(out.h > 0 && out.w > 0, ValueError, "AdaptiveAvgPool2d: output_size must be positive, got ",
              arg_str(out));
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size); }

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + arg_str(output_size); }

}  // namespace ember::nn
