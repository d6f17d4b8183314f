// conv2d on CUDA through cuDNN 9's graph (backend) API: one operation per graph
// (CONVOLUTION_FORWARD, _BACKWARD_DATA or _BACKWARD_FILTER), engine configurations from the
// heuristics (mode A, then the fallback list), filtered by their numerical notes, the first one
// that finalizes into an execution plan is kept in a per-device cache keyed by everything that
// shapes the plan (kind, dtype, dims, strides, pointer alignment, padding, stride, dilation,
// groups, TF32 switch). Workspace comes from the caching allocator on the current stream.
//
// Tensors are contiguous NCHW (the op layer makes them so); the three tensors of each graph
// have fixed unique ids: 1 = the input-shaped tensor (x or dx), 2 = the weight-shaped one (w or
// dw), 3 = the output-shaped one (y or dy). Groups are expressed as cuDNN infers them: the
// weight's channel dim is c / groups.
//
// Precision: f32 convolutions refuse engines whose notes say TENSOR_CORE (TF32 for f32 data),
// DOWN_CONVERT_INPUTS or REDUCED_PRECISION_REDUCTION unless cuda::allow_tf32() (then TENSOR_CORE
// is allowed); f16/bf16 data compute in f32 and refuse REDUCED_PRECISION_REDUCTION and
// DOWN_CONVERT_INPUTS; f64 computes in f64. Among acceptable engines, deterministic ones without
// FFT or Winograd notes are preferred; the others are taken only when none of those builds.
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/runtime.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/cuda.hpp"

#if EMBER_HAVE_CUDNN
#include "cuda/cudnn.hpp"
#endif

namespace ember::cuda_backend {

#if EMBER_HAVE_CUDNN
namespace {

using cudnn::Descriptor;

enum class Kind : int { forward = 0, backward_data = 1, backward_filter = 2 };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::forward: return "forward";
    case Kind::backward_data: return "input gradient";
    case Kind::backward_filter: return "weight gradient";
  }
  return "?";
}

using Dims = std::array<int64_t, 4>;

// Everything that shapes a plan. Strides are those of the contiguous tensors (kept in the key
// so that strided operands can be admitted later without a cache change).
struct Key {
  int kind = 0, device = 0, dtype = 0;
  bool tf32 = false;
  Dims xd{}, xs{}, wd{}, ws{}, yd{}, ys{};
  std::array<int64_t, 3> align{};
  std::array<int64_t, 6> conv{};  // sh, sw, ph, pw, dh, dw
  int64_t groups = 1;
  friend auto operator<=>(const Key&, const Key&) = default;
};

struct Plan {
  std::vector<Descriptor> keep;  // tensors, convolution, operation, graph, engine config
  Descriptor plan;
  int64_t workspace = 0;
};

// Plans per device (guarded by cudnn::device_mutex(device)). A cache that reaches kMaxPlans is
// emptied: shapes come from a training loop and rarely number more than a few dozen.
constexpr size_t kMaxPlans = 1024;
// Engine configurations that want more workspace than this are passed over.
constexpr int64_t kMaxWorkspaceBytes = int64_t{1} << 30;

std::array<std::map<Key, std::unique_ptr<Plan>>, kMaxDevices>& caches() {
  static auto* c = new std::array<std::map<Key, std::unique_ptr<Plan>>, kMaxDevices>();  // leaked on purpose
  return *c;
}
std::atomic<int64_t> g_hits{0}, g_misses{0};

cudnnDataType_t data_type(DType dt) {
  switch (dt) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    default:
      EMBER_THROW(NotImplemented, "conv2d on CUDA: dtype ", dtype_name(dt),
                  " is not supported (float32, float64, float16 and bfloat16 are)");
  }
}

Dims packed_strides(const Dims& d) { return {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1}; }

// The largest power of two (at most 16) dividing the address.
int64_t alignment(const void* p) {
  const uint64_t v = reinterpret_cast<uintptr_t>(p) | uint64_t{16};
  return static_cast<int64_t>(v & (~v + 1));
}

std::string dims_str(const Dims& d) {
  return ember::detail::str_cat("(", d[0], ", ", d[1], ", ", d[2], ", ", d[3], ")");
}

Descriptor tensor_desc(int64_t uid, cudnnDataType_t dt, const Dims& dims, const Dims& strides, int64_t align) {
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
  t.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data());
  t.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data());
  t.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  t.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
  t.finalize();
  return t;
}

// The numerical notes of one engine configuration from the heuristics.
std::vector<cudnnBackendNumericalNote_t> numerical_notes(const Descriptor& cfg) {
  const cudnn::Api& a = cudnn::api();
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t n = 0;
  EMBER_CUDNN_CHECK(
      a.BackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, engine.out()));
  std::vector<cudnnBackendNumericalNote_t> notes(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
  n = 0;
  EMBER_CUDNN_CHECK(a.BackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                          static_cast<int64_t>(notes.size()), &n, notes.data()));
  notes.resize(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(n, CUDNN_NUMERICAL_NOTE_TYPE_COUNT))));
  return notes;
}

// 0: preferred, 1: acceptable, 2: refused (precision).
int rank_notes(const std::vector<cudnnBackendNumericalNote_t>& notes, DType dt, bool tf32) {
  int rank = 0;
  for (cudnnBackendNumericalNote_t n : notes) {
    switch (n) {
      case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
        if (dt == DType::f32 && !tf32) return 2;  // TF32 for f32 data
        break;
      case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
      case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION: return 2;
      case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
      case CUDNN_NUMERICAL_NOTE_FFT:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13: rank = 1; break;
      default: break;
    }
  }
  return rank;
}

std::string describe(const Key& k, DType dt) {
  return ember::detail::str_cat(kind_name(static_cast<Kind>(k.kind)), " of a ", dtype_name(dt), " convolution, input ",
                                dims_str(k.xd), ", weight ", dims_str(k.wd), ", output ", dims_str(k.yd), ", stride (",
                                k.conv[0], ", ", k.conv[1], "), padding (", k.conv[2], ", ", k.conv[3],
                                "), dilation (", k.conv[4], ", ", k.conv[5], "), groups ", k.groups);
}

// Configurations that fail to finalize leave cuDNN's last error message behind; read it away
// so that it does not end up in the message of an unrelated later failure.
void clear_last_error() {
  char sink[512];
  cudnn::api().GetLastErrorString(sink, sizeof(sink));
}

std::unique_ptr<Plan> build_plan(const Key& k, DType dt, cudnnHandle_t h) {
  auto p = std::make_unique<Plan>();
  const cudnnDataType_t type = data_type(dt);
  Descriptor x = tensor_desc(1, type, k.xd, k.xs, k.align[0]);
  Descriptor w = tensor_desc(2, type, k.wd, k.ws, k.align[1]);
  Descriptor y = tensor_desc(3, type, k.yd, k.ys, k.align[2]);

  Descriptor conv(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t comp = dt == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;  // PyTorch's conv2d
  const int64_t spatial = 2;
  const int64_t stride[2] = {k.conv[0], k.conv[1]}, pad[2] = {k.conv[2], k.conv[3]}, dil[2] = {k.conv[4], k.conv[5]};
  conv.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp);
  conv.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  conv.set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial);
  conv.set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride);
  conv.set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
  conv.set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
  conv.set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil);
  conv.finalize();

  // y = 1·op + 0·y: outputs are overwritten. The scaling factors are double for double data.
  const float alpha_f = 1.0f, beta_f = 0.0f;
  const double alpha_d = 1.0, beta_d = 0.0;
  const bool dbl = dt == DType::f64;
  const cudnnBackendAttributeType_t st = dbl ? CUDNN_TYPE_DOUBLE : CUDNN_TYPE_FLOAT;
  const void* alpha = dbl ? static_cast<const void*>(&alpha_d) : static_cast<const void*>(&alpha_f);
  const void* beta = dbl ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta_f);

  Descriptor op;
  switch (static_cast<Kind>(k.kind)) {
    case Kind::forward:
      op = Descriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, y);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, st, 1, alpha);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, st, 1, beta);
      break;
    case Kind::backward_data:
      op = Descriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, x);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, w);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, y);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, conv);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, st, 1, alpha);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, st, 1, beta);
      break;
    case Kind::backward_filter:
      op = Descriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, x);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, w);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, y);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, conv);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, st, 1, alpha);
      op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, st, 1, beta);
      break;
  }
  op.finalize();

  // The handle attributes are marked deprecated in 9.19 (in favour of device-property
  // descriptors, 9.8+) but are what every cuDNN 9 release accepts.
  Descriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  cudnnBackendDescriptor_t ops[1] = {op.get()};
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, ops);
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  graph.finalize();

  const cudnn::Api& a = cudnn::api();
  int offered = 0, refused = 0, failed = 0, too_big = 0;
  for (cudnnBackendHeurMode_t hmode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Descriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heur.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &hmode);
    if (heur.try_finalize() != CUDNN_STATUS_SUCCESS) continue;  // this mode does not cover the graph
    int64_t count = 0;
    if (a.BackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                              nullptr) != CUDNN_STATUS_SUCCESS ||
        count <= 0)
      continue;
    std::vector<Descriptor> cfgs;
    cfgs.reserve(static_cast<size_t>(count));
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < count; ++i) {
      cfgs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      raw.push_back(cfgs.back().get());
    }
    int64_t got = 0;
    EMBER_CUDNN_CHECK(a.BackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                            count, &got, raw.data()));
    got = std::min(got, count);
    offered += static_cast<int>(got);
    std::vector<int> ranks(static_cast<size_t>(got));
    for (int64_t i = 0; i < got; ++i) {
      // A configuration whose notes cannot be read is treated as refused.
      try {
        ranks[static_cast<size_t>(i)] = rank_notes(numerical_notes(cfgs[static_cast<size_t>(i)]), dt, k.tf32);
      } catch (const Error&) {
        ranks[static_cast<size_t>(i)] = 2;
      }
      if (ranks[static_cast<size_t>(i)] == 2) ++refused;
    }
    // Preferred engines first, in the heuristics' order; then the merely acceptable ones.
    for (int want = 0; want <= 1; ++want) {
      for (int64_t i = 0; i < got; ++i) {
        if (ranks[static_cast<size_t>(i)] != want) continue;
        Descriptor& cfg = cfgs[static_cast<size_t>(i)];
        Descriptor plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
        plan.set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
        if (plan.try_finalize() != CUDNN_STATUS_SUCCESS) {
          ++failed;
          continue;
        }
        int64_t ws = 0, n = 0;
        EMBER_CUDNN_CHECK(a.BackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                CUDNN_TYPE_INT64, 1, &n, &ws));
        if (ws > kMaxWorkspaceBytes) {
          ++too_big;
          continue;
        }
        p->plan = std::move(plan);
        p->workspace = std::max<int64_t>(ws, 0);
        p->keep.push_back(std::move(x));
        p->keep.push_back(std::move(w));
        p->keep.push_back(std::move(y));
        p->keep.push_back(std::move(conv));
        p->keep.push_back(std::move(op));
        p->keep.push_back(std::move(graph));
        p->keep.push_back(std::move(cfg));
        clear_last_error();  // what the configurations tried before this one left behind
        return p;
      }
    }
  }
  clear_last_error();
  EMBER_THROW(NotImplemented, "conv2d on CUDA: cuDNN has no usable engine for the ", describe(k, dt),
              " (heuristics offered ", offered, " configurations: ", refused, " refused for precision",
              dt == DType::f32 && !k.tf32 ? " (TF32 is off)" : "", ", ", failed, " failed to build, ", too_big,
              " wanted more than 1 GiB of workspace)");
}

// Runs one convolution graph: xt is input-shaped (x or dx), wt weight-shaped, yt output-shaped.
void run(Kind kind, const Tensor& xt, const Tensor& wt, const Tensor& yt, const ConvGeom& g) {
  const DType dt = xt.dtype();
  (void)data_type(dt);  // dtype check first
  const Device dev = xt.device();
  EMBER_CHECK(dev.is_cuda() && wt.device() == dev && yt.device() == dev, DeviceError, "conv2d on CUDA (",
              kind_name(kind), "): tensors on ", xt.device().str(), ", ", wt.device().str(), " and ",
              yt.device().str(), "; expected one CUDA device");
  EMBER_CHECK(wt.dtype() == dt && yt.dtype() == dt, DTypeError, "conv2d on CUDA (", kind_name(kind),
              "): expected one dtype, got ", dtype_name(dt), ", ", dtype_name(wt.dtype()), " and ",
              dtype_name(yt.dtype()));
  const Dims xd{g.n, g.c, g.h, g.w}, wd{g.o, g.groups > 0 ? g.c / g.groups : g.c, g.kh, g.kw}, yd{g.n, g.o, g.oh, g.ow};
  auto same = [](const Tensor& t, const Dims& d) {
    return t.dim() == 4 && t.size(0) == d[0] && t.size(1) == d[1] && t.size(2) == d[2] && t.size(3) == d[3];
  };
  EMBER_CHECK(same(xt, xd) && same(wt, wd) && same(yt, yd), ShapeError, "conv2d on CUDA (", kind_name(kind),
              "): expected tensors of shapes ", dims_str(xd), ", ", dims_str(wd), " and ", dims_str(yd), ", got ",
              shape_str(xt.shape()), ", ", shape_str(wt.shape()), " and ", shape_str(yt.shape()));
  EMBER_CHECK(xt.is_contiguous() && wt.is_contiguous() && yt.is_contiguous(), ValueError, "conv2d on CUDA (",
              kind_name(kind), "): expected contiguous tensors");
  if (xt.numel() == 0 || wt.numel() == 0 || yt.numel() == 0) return;  // the op layer handles empty batches

  // A contiguous view with a storage offset (a batch slice of odd size) may be aligned to as
  // little as its element size, which many engines refuse: such operands go through fresh
  // (256-byte aligned) copies, and a misaligned output is written back after the run.
  const bool ax = alignment(xt.data_ptr()) >= 16, aw = alignment(wt.data_ptr()) >= 16,
             ay = alignment(yt.data_ptr()) >= 16;
  if (!ax || !aw || !ay) {
    auto fresh = [](const Tensor& t, bool is_output) {
      Tensor c = empty(t.shape(), {.dtype = t.dtype(), .device = t.device()});
      if (!is_output) copy(c, t);
      return c;
    };
    const bool out_x = kind == Kind::backward_data, out_w = kind == Kind::backward_filter,
               out_y = kind == Kind::forward;
    const Tensor x2 = ax ? xt : fresh(xt, out_x), w2 = aw ? wt : fresh(wt, out_w), y2 = ay ? yt : fresh(yt, out_y);
    run(kind, x2, w2, y2, g);
    if (out_x && !ax) copy(xt, x2);
    if (out_w && !aw) copy(wt, w2);
    if (out_y && !ay) copy(yt, y2);
    return;
  }

  Key k;
  k.kind = static_cast<int>(kind);
  k.device = dev.index;
  k.dtype = static_cast<int>(dt);
  k.tf32 = dt == DType::f32 && cuda::allow_tf32();
  k.xd = xd, k.wd = wd, k.yd = yd;
  k.xs = packed_strides(xd), k.ws = packed_strides(wd), k.ys = packed_strides(yd);
  k.align = {alignment(xt.data_ptr()), alignment(wt.data_ptr()), alignment(yt.data_ptr())};
  k.conv = {g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
  k.groups = g.groups;

  const cudnn::Api& a = cudnn::api();
  DeviceGuard guard(dev.index);
  const cudaStream_t stream = current_stream(dev.index);
  std::lock_guard<std::mutex> lock(cudnn::device_mutex(dev.index));
  cudnnHandle_t h = cudnn::handle(dev.index, stream);
  auto& cache = caches()[static_cast<size_t>(dev.index)];
  auto it = cache.find(k);
  if (it == cache.end()) {
    std::unique_ptr<Plan> p = build_plan(k, dt, h);
    g_misses.fetch_add(1, std::memory_order_relaxed);
    if (cache.size() >= kMaxPlans) cache.clear();
    it = cache.emplace(k, std::move(p)).first;
  } else {
    g_hits.fetch_add(1, std::memory_order_relaxed);
  }
  const Plan& plan = *it->second;

  Tensor ws = plan.workspace > 0 ? scratch(dev.index, plan.workspace) : Tensor();
  void* ws_ptr = ptr_or_null(ws);
  void* ptrs[3] = {xt.data_ptr(), wt.data_ptr(), yt.data_ptr()};
  const int64_t uids[3] = {1, 2, 3};
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs);
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws_ptr);
  pack.finalize();
  EMBER_CUDNN_CHECK(a.BackendExecute(h, plan.plan.get(), pack.get()));
  // ws goes back to the caching allocator tied to `stream`: reused only by work ordered after this.
}

}  // namespace

void conv2d_forward(const Tensor& out, const Tensor& x, const Tensor& w, const ConvGeom& g) {
  run(Kind::forward, x, w, out, g);
}

void conv2d_backward_input(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeom& g) {
  run(Kind::backward_data, gx, w, gy, g);
}

void conv2d_backward_weight(const Tensor& gw, const Tensor& gy, const Tensor& x, const ConvGeom& g) {
  run(Kind::backward_filter, x, gw, gy, g);
}

ConvPlanCacheStats conv_plan_cache_stats() {
  ConvPlanCacheStats s;
  s.hits = g_hits.load(std::memory_order_relaxed);
  s.misses = g_misses.load(std::memory_order_relaxed);
  for (int d = 0; d < kMaxDevices; ++d) {
    std::lock_guard<std::mutex> lock(cudnn::device_mutex(d));
    s.entries += static_cast<int64_t>(caches()[static_cast<size_t>(d)].size());
  }
  return s;
}

void clear_conv_plan_cache() {
  for (int d = 0; d < kMaxDevices; ++d) {
    std::lock_guard<std::mutex> lock(cudnn::device_mutex(d));
    caches()[static_cast<size_t>(d)].clear();
  }
}

bool cudnn_available(std::string* why) {
  if (!available()) {
    if (why != nullptr) *why = "no CUDA device";
    return false;
  }
  return cudnn::try_api(why) != nullptr;
}

#else  // CUDA without cuDNN: CMake said so in a STATUS line.

namespace {
[[noreturn]] void no_cudnn() {
  EMBER_THROW(NotImplemented,
              "conv2d on CUDA tensors: this build of Ember has no cuDNN (cuDNN 9 was not found when it was "
              "configured); reconfigure with cuDNN 9 installed under the CUDA toolkit");
}
}  // namespace

void conv2d_forward(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&) { no_cudnn(); }
void conv2d_backward_input(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&) { no_cudnn(); }
void conv2d_backward_weight(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&) { no_cudnn(); }
ConvPlanCacheStats conv_plan_cache_stats() { return {}; }
void clear_conv_plan_cache() {}
bool cudnn_available(std::string* why) {
  if (why != nullptr) *why = "this build of Ember has no cuDNN (not found when it was configured)";
  return false;
}

#endif  // EMBER_HAVE_CUDNN

}  // namespace ember::cuda_backend
