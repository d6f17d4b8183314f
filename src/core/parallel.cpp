// The CPU thread pool is OpenMP's (shared with oneDNN, which Debian builds against libgomp).
// The thread count is a process-wide setting passed explicitly to every parallel region, so it
// also holds for regions started from threads that never called set_num_threads.
#include "ember/core/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include "ember/core/error.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ember {
namespace {
int default_threads() {
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}
std::atomic<int> g_threads{default_threads()};
}  // namespace

void set_num_threads(int n) {
  EMBER_CHECK(n >= 1, ValueError, "set_num_threads: expected a positive thread count, got ", n);
  g_threads.store(n);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

int get_num_threads() { return g_threads.load(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t max_chunks = (n + grain - 1) / grain;
  int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), max_chunks));
#ifdef _OPENMP
  if (threads > 1 && !omp_in_parallel()) {
    std::exception_ptr error;
#pragma omp parallel num_threads(threads)
    {
      int tid = omp_get_thread_num();
      int nt = omp_get_num_threads();
      int64_t chunk = (n + nt - 1) / nt;
      int64_t b = tid * chunk, e = std::min(n, b + chunk);
      if (b < e) {
        try {
          fn(b, e);
        } catch (...) {
#pragma omp critical(ember_parallel_error)
          if (!error) error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  fn(0, n);
}

}  // namespace ember
