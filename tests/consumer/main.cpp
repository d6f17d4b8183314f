// Builds a tiny graph with an installed Ember and checks the gradients against closed forms:
//   y = sum(x * w + b)   =>   dy/dw = x,  dy/db = numel(x)   (b broadcasts over x)
//   z = sum(w * w)       =>   dz/dw = 2w
// Prints "consumer: ok" and returns 0 only when every value matches.
#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

#include <ember/ember.hpp>

namespace {

int g_failures = 0;

void expect_near(const char* what, const std::vector<float>& got, const std::vector<float>& want) {
  bool ok = got.size() == want.size();
  for (size_t i = 0; ok && i < got.size(); ++i) {
    // Written so that NaN fails: !(diff <= tol).
    if (!(std::abs(got[i] - want[i]) <= 1e-6f * (1.0f + std::abs(want[i])))) ok = false;
  }
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "consumer: %s mismatch: got", what);
    for (float v : got) std::fprintf(stderr, " %g", v);
    std::fprintf(stderr, ", want");
    for (float v : want) std::fprintf(stderr, " %g", v);
    std::fprintf(stderr, "\n");
  }
}

}  // namespace

int main() {
  using namespace ember;
  try {
    const std::vector<float> xv = {1.5f, -2.0f, 0.25f, 4.0f};
    const std::vector<float> wv = {0.5f, 3.0f, -1.0f, 2.0f};
    Tensor x = tensor<float>(xv);
    Tensor w = tensor<float>(wv).requires_grad_();
    Tensor b = tensor<float>({0.75f}).requires_grad_();

    Tensor y = (x * w + b).sum();
    float want_y = 0.0f;
    for (size_t i = 0; i < xv.size(); ++i) want_y += xv[i] * wv[i] + 0.75f;
    expect_near("y", {y.item<float>()}, {want_y});
    y.backward();
    expect_near("dy/dw", w.grad().to_vector<float>(), xv);
    expect_near("dy/db", b.grad().to_vector<float>(), {static_cast<float>(xv.size())});

    w.set_grad(Tensor());
    Tensor z = (w * w).sum();
    z.backward();
    std::vector<float> two_w(wv.size());
    for (size_t i = 0; i < wv.size(); ++i) two_w[i] = 2.0f * wv[i];
    expect_near("dz/dw", w.grad().to_vector<float>(), two_w);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: error: %s\n", e.what());
    return 1;
  }
  if (g_failures != 0) {
    std::fprintf(stderr, "consumer: %d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("consumer: ok (Ember %s, CUDA devices: %d)\n", ember::kVersion, ember::cuda::device_count());
  return 0;
}
