// Used when Ember is built without CUDA: every CUDA entry point reports that clearly, device
// queries report no devices, and the TF32 switch is a plain flag.
#include <atomic>

#include "ember/backend/cuda.hpp"
#include "ember/cuda.hpp"

namespace ember::cuda_backend {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  EMBER_THROW(DeviceError, what, ": this build of Ember has no CUDA support (configure with -DEMBER_WITH_CUDA=ON)");
}
}  // namespace

bool available() { return false; }
int device_count() { return 0; }
void copy_across(const Tensor&, const Tensor&, bool) { no_cuda("copy to/from a CUDA tensor"); }
Tensor pin_memory(const Tensor& t) {
  EMBER_CHECK(t.defined(), ValueError, "pin_memory: got an undefined tensor");
  EMBER_CHECK(t.is_cpu(), DeviceError, "pin_memory: expected a CPU tensor, got one on ", t.device().str());
  return t;  // no CUDA: pageable memory is all there is
}
bool is_pinned(const Tensor&) { return false; }
void copy(const Tensor&, const Tensor&) { no_cuda("copy on a CUDA tensor"); }
void fill(const Tensor&, const Scalar&) { no_cuda("fill on a CUDA tensor"); }
void binary(cpu::BinaryOp, const Tensor&, const Tensor&, const Tensor&, const Scalar&) {
  no_cuda("elementwise op on a CUDA tensor");
}
void unary(cpu::UnaryOp, const Tensor&, const Tensor&) { no_cuda("elementwise op on a CUDA tensor"); }
void where(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("where on CUDA tensors"); }
void reduce(const Tensor&, const Tensor&, const cpu::ReduceGeom&, cpu::ReduceKind, double) {
  no_cuda("reduction on a CUDA tensor");
}
void softmax(const Tensor&, const Tensor&, const cpu::ReduceGeom&, bool) { no_cuda("softmax on a CUDA tensor"); }
void softmax_backward(const Tensor&, const Tensor&, const Tensor&, const cpu::ReduceGeom&, bool) {
  no_cuda("softmax backward on a CUDA tensor");
}
void gemm(const Tensor&, const Tensor&, const Tensor&, double, double) { no_cuda("matmul on CUDA tensors"); }
bool linear_bias(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { return false; }
bool linear_gelu(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { return false; }
bool gelu_backward_bgrad(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { return false; }
void cross_entropy_forward(const Tensor&, const Tensor&, const Tensor&, int64_t, const Tensor&, const Tensor&,
                           const Tensor&, const Tensor&) {
  no_cuda("cross_entropy on CUDA tensors");
}
void cross_entropy_backward(const Tensor&, const Tensor&, const Tensor&, int64_t, double, const Tensor&, const Tensor&,
                            const Tensor&) {
  no_cuda("cross_entropy on CUDA tensors");
}

void adam_step(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double, double, double, double, double,
               double, double, bool) {
  no_cuda("Adam on CUDA parameters");
}
void adam_step_guarded(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, double,
                       double, double, double, double, bool) {
  no_cuda("Adam on CUDA parameters");
}
void sgd_step(const Tensor&, const Tensor&, const Tensor&, double, double, double, double, bool, bool, const Tensor&) {
  no_cuda("SGD on CUDA parameters");
}
void multi_adam_step(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&,
                     const std::vector<Tensor>&, const std::vector<double>&, const std::vector<double>&,
                     const std::vector<Tensor>&, const Tensor&, double, double, double, double, double, bool) {
  no_cuda("Adam on CUDA parameters");
}
void multi_sgd_step(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&,
                    const std::vector<bool>&, double, double, double, double, bool, const Tensor&,
                    const std::vector<Tensor>&) {
  no_cuda("SGD on CUDA parameters");
}
Tensor sgd_started_flags(const Tensor&) { no_cuda("SGD on CUDA parameters"); }
Tensor multi_grad_norm(const std::vector<Tensor>&, bool, double, Tensor&) {
  no_cuda("clip_grad_norm_ on CUDA gradients");
}
void multi_scale_(const std::vector<Tensor>&, const Tensor&) { no_cuda("clip_grad_norm_ on CUDA gradients"); }

// ---- Layers: pooling, batch norm, dropout.
void max_pool2d(const Tensor&, const Tensor&, const Tensor&, const PoolGeom&) {
  no_cuda("max_pool2d on a CUDA tensor");
}
void max_pool2d_backward(const Tensor&, const Tensor&, const Tensor&, const PoolGeom&) {
  no_cuda("max_pool2d backward on a CUDA tensor");
}
void avg_pool2d(const Tensor&, const Tensor&, const PoolGeom&, bool) { no_cuda("avg_pool2d on a CUDA tensor"); }
void avg_pool2d_backward(const Tensor&, const Tensor&, const PoolGeom&, bool) {
  no_cuda("avg_pool2d backward on a CUDA tensor");
}
void adaptive_avg_pool2d(const Tensor&, const Tensor&, const PoolGeom&) {
  no_cuda("adaptive_avg_pool2d on a CUDA tensor");
}
void adaptive_avg_pool2d_backward(const Tensor&, const Tensor&, const PoolGeom&) {
  no_cuda("adaptive_avg_pool2d backward on a CUDA tensor");
}
void batch_norm_moments(const Tensor&, const ChannelGeom&, double, const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("batch_norm on a CUDA tensor");
}
void batch_norm_invstd(const Tensor&, double, const Tensor&) { no_cuda("batch_norm on a CUDA tensor"); }
void batch_norm_apply(const Tensor&, const Tensor&, const ChannelGeom&, const Tensor&, const Tensor&, const Tensor&,
                      const Tensor&) {
  no_cuda("batch_norm on a CUDA tensor");
}
void batch_norm_grad_sums(const Tensor&, const Tensor&, const ChannelGeom&, const Tensor&, const Tensor&,
                          const Tensor&) {
  no_cuda("batch_norm backward on a CUDA tensor");
}
void batch_norm_backward_input(const Tensor&, const Tensor&, const Tensor&, const ChannelGeom&, const Tensor&,
                               const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool) {
  no_cuda("batch_norm backward on a CUDA tensor");
}
void dropout(const Tensor&, const Tensor&, const Tensor&, double, GeneratorState) {
  no_cuda("dropout on a CUDA tensor");
}

// ---- Convolution (cuDNN).
void conv2d_forward(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&) {
  no_cuda("conv2d on CUDA tensors");
}
void conv2d_backward_input(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&) {
  no_cuda("conv2d backward on CUDA tensors");
}
void conv2d_backward_weight(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&) {
  no_cuda("conv2d backward on CUDA tensors");
}
ConvPlanCacheStats conv_plan_cache_stats() { no_cuda("conv_plan_cache_stats"); }
void clear_conv_plan_cache() {}  // nothing is cached without CUDA
bool cudnn_available(std::string* why) {
  if (why != nullptr) *why = "this build of Ember has no CUDA support";
  return false;
}

// ---- More reductions and clamp.
void reduce_arg(const Tensor&, const Tensor&, const Tensor&, const cpu::ReduceGeom&, bool) {
  no_cuda("argmax/argmin on a CUDA tensor");
}
void var(const Tensor&, const Tensor&, const cpu::ReduceGeom&, int64_t, bool) { no_cuda("var/std on a CUDA tensor"); }
void scatter_reduced(const Tensor&, const Tensor&, const Tensor&, const cpu::ReduceGeom&) {
  no_cuda("max/min backward on a CUDA tensor");
}
void clamp(const Tensor&, const Tensor&, const std::optional<Scalar>&, const std::optional<Scalar>&) {
  no_cuda("clamp on a CUDA tensor");
}

// ---- Indexing, sorting, sampling, LayerNorm.
void check_index_errors(int, bool) { no_cuda("check_index_errors"); }
void index_select(const Tensor&, const Tensor&, int64_t, const Tensor&) { no_cuda("index_select on a CUDA tensor"); }
void embedding(const Tensor&, const Tensor&, const Tensor&) { no_cuda("embedding on a CUDA tensor"); }
void index_add(const Tensor&, int64_t, const Tensor&, const Tensor&) { no_cuda("index_add on a CUDA tensor"); }
void gather(const Tensor&, const Tensor&, int64_t, const Tensor&) { no_cuda("gather on a CUDA tensor"); }
void scatter_add(const Tensor&, int64_t, const Tensor&, const Tensor&) { no_cuda("scatter_add on a CUDA tensor"); }
void embedding_backward(const Tensor&, const Tensor&, const Tensor&) { no_cuda("embedding backward on a CUDA tensor"); }
void sort_rows(const Tensor&, const Tensor&, const Tensor&, bool) { no_cuda("sort on a CUDA tensor"); }
Tensor multinomial(const Tensor&, int64_t, bool, Generator&) { no_cuda("multinomial on a CUDA tensor"); }
void layer_norm_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        double) {
  no_cuda("layer_norm on a CUDA tensor");
}
void layer_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&) {
  no_cuda("layer_norm backward on a CUDA tensor");
}

// ---- cumsum, logsumexp, random fills.
void cumsum(const Tensor&, const Tensor&, const cpu::ReduceGeom&, bool) { no_cuda("cumsum on a CUDA tensor"); }
void logsumexp(const Tensor&, const Tensor&, const cpu::ReduceGeom&) { no_cuda("logsumexp on a CUDA tensor"); }
void random_fill(const Tensor&, const RandomSpec&, Generator&) { no_cuda("random fill of a CUDA tensor"); }

}  // namespace ember::cuda_backend

namespace ember::cuda {

namespace {
std::atomic<bool> g_allow_tf32{false};
[[noreturn]] void no_cuda(const char* what) {
  EMBER_THROW(DeviceError, what, ": this build of Ember has no CUDA support (configure with -DEMBER_WITH_CUDA=ON)");
}
}  // namespace

void set_device(int) { no_cuda("set_device"); }
int current_device() { no_cuda("current_device"); }
void synchronize(int) { no_cuda("synchronize"); }

Stream Stream::create(int, bool) { no_cuda("Stream::create"); }
Stream Stream::wrap(void*, int) { no_cuda("Stream::wrap"); }
Stream::~Stream() = default;
Stream::Stream(Stream&& o) noexcept : handle_(o.handle_), device_(o.device_), owned_(o.owned_) {}
Stream& Stream::operator=(Stream&& o) noexcept {
  handle_ = o.handle_;
  device_ = o.device_;
  owned_ = o.owned_;
  return *this;
}
void Stream::synchronize() const { no_cuda("Stream::synchronize"); }
bool Stream::query() const { no_cuda("Stream::query"); }

Event::Event(bool) { no_cuda("Event"); }
Event::~Event() = default;
Event::Event(Event&& o) noexcept : handle_(o.handle_), device_(o.device_) {}
Event& Event::operator=(Event&& o) noexcept {
  handle_ = o.handle_;
  device_ = o.device_;
  return *this;
}
void Event::record(const Stream&) { no_cuda("Event::record"); }
void Event::record() { no_cuda("Event::record"); }
void Event::synchronize() const { no_cuda("Event::synchronize"); }
bool Event::query() const { no_cuda("Event::query"); }
void Event::block(const Stream&) const { no_cuda("Event::block"); }
float Event::elapsed_ms(const Event&) const { no_cuda("Event::elapsed_ms"); }

Stream current_stream(int) { no_cuda("current_stream"); }
void set_current_stream(const Stream&) { no_cuda("set_current_stream"); }
StreamGuard::StreamGuard(const Stream&) { no_cuda("StreamGuard"); }
StreamGuard::~StreamGuard() = default;

AllocatorStats memory_stats(int) { no_cuda("memory_stats"); }
void empty_cache() {}  // nothing is cached without CUDA
void reset_peak_memory_stats(int) { no_cuda("reset_peak_memory_stats"); }

uint64_t host_sync_count() { return 0; }  // no device, nothing to wait for

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

}  // namespace ember::cuda
