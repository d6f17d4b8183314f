// Thread-local autocast state; see include/ember/amp/autocast.hpp.
#include "ember/amp/autocast.hpp"

#include "ember/core/error.hpp"

namespace ember::amp {

namespace {

struct State {
  bool enabled = false;
  DType dtype = kBFloat16;
};

constexpr int kDeviceTypes = 2;  // DeviceType::cpu, DeviceType::cuda

State& state(DeviceType t) {
  thread_local State states[kDeviceTypes];
  return states[static_cast<int>(t)];
}

void check_dtype(const char* where, DType dtype) {
  EMBER_CHECK(dtype == kFloat16 || dtype == kBFloat16, DTypeError, where,
              ": the autocast dtype must be float16 or bfloat16, got ", dtype_name(dtype));
}

}  // namespace

bool is_autocast_enabled(DeviceType device_type) { return state(device_type).enabled; }

DType autocast_dtype(DeviceType device_type) { return state(device_type).dtype; }

void set_autocast_state(DeviceType device_type, bool enabled, DType dtype) {
  check_dtype("set_autocast_state", dtype);
  state(device_type) = {enabled, dtype};
}

AutocastGuard::AutocastGuard(DType dtype, DeviceType device_type, bool enabled)
    : device_type_(device_type),
      prev_enabled_(state(device_type).enabled),
      prev_dtype_(state(device_type).dtype) {
  check_dtype("AutocastGuard", dtype);
  state(device_type) = {enabled, dtype};
}

AutocastGuard::~AutocastGuard() { state(device_type_) = {prev_enabled_, prev_dtype_}; }

Tensor autocast_low(const Tensor& t) {
  if (!t.defined()) return t;
  const State& s = state(t.device().type);
  if (!s.enabled) return t;
  const DType dt = t.dtype();
  if (dt == s.dtype || !(dt == kFloat32 || dt == kFloat16 || dt == kBFloat16)) return t;
  return t.to(s.dtype);
}

Tensor autocast_f32(const Tensor& t) {
  if (!t.defined() || !state(t.device().type).enabled) return t;
  const DType dt = t.dtype();
  return dt == kFloat16 || dt == kBFloat16 ? t.to(kFloat32) : t;
}

}  // namespace ember::amp
