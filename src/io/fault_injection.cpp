// The test fault seam of the file-writing layer (see ember/io/fault_injection.hpp).
#include "ember/io/fault_injection.hpp"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "ember/core/error.hpp"
#include "io/file_util.hpp"

namespace ember::io {
namespace {

// The hook lives behind a mutex; `g_hook_set` lets the no-hook path cost one relaxed load.
std::atomic<bool> g_hook_set{false};
std::mutex g_hook_mutex;
std::shared_ptr<const testing::FaultHook> g_hook;

constexpr const char* kCrashPoints[] = {"after_write", "after_fsync", "after_rename"};

// EMBER_TEST_CRASH_AT, parsed at the first checkpoint save.
struct CrashSpec {
  std::string point;  // empty: not armed
  long long save = 0;
};
std::once_flag g_crash_once;
CrashSpec g_crash;
std::atomic<long long> g_saves{0};

CrashSpec parse_crash_spec(const char* env) {
  const std::string s = env;
  const auto colon = s.rfind(':');
  CrashSpec spec;
  bool ok = colon != std::string::npos && colon + 1 < s.size() && colon + 19 >= s.size();
  if (ok) {
    spec.point = s.substr(0, colon);
    for (size_t i = colon + 1; i < s.size(); ++i) ok = ok && s[i] >= '0' && s[i] <= '9';
    if (ok) spec.save = std::stoll(s.substr(colon + 1));
    bool known = false;
    for (const char* p : kCrashPoints) known = known || spec.point == p;
    ok = ok && known && spec.save >= 1;
  }
  EMBER_CHECK(ok, ValueError,
              "EMBER_TEST_CRASH_AT: expected '<point>:<n>' with <point> one of after_write, after_fsync, "
              "after_rename and <n> >= 1 (the n-th checkpoint save of the process), found '",
              s, "'");
  return spec;
}

}  // namespace

namespace testing {

const char* file_op_name(FileOp op) {
  switch (op) {
    case FileOp::open: return "open";
    case FileOp::write: return "write";
    case FileOp::fsync: return "fsync";
    case FileOp::close: return "close";
    case FileOp::rename: return "rename";
    case FileOp::mkdir: return "mkdir";
    case FileOp::fsync_dir: return "fsync_dir";
    case FileOp::remove: return "remove";
  }
  return "unknown";
}

void set_fault_hook(FaultHook hook) {
  std::lock_guard<std::mutex> lock(g_hook_mutex);
  g_hook = hook ? std::make_shared<const FaultHook>(std::move(hook)) : nullptr;
  g_hook_set.store(g_hook != nullptr, std::memory_order_release);
}

void crash_point(const char* point) {
  // g_crash is written once under g_crash_once, before any save reaches a crash point.
  if (g_crash.point.empty() || g_saves.load(std::memory_order_relaxed) != g_crash.save) return;
  if (std::strcmp(point, g_crash.point.c_str()) != 0) return;
  std::raise(SIGKILL);
}

}  // namespace testing

namespace detail {

testing::Fault consult_fault_hook(testing::FileOp op, const std::string& path, size_t bytes) {
  if (!g_hook_set.load(std::memory_order_relaxed)) return {};
  std::shared_ptr<const testing::FaultHook> hook;
  {
    std::lock_guard<std::mutex> lock(g_hook_mutex);
    hook = g_hook;
  }
  if (!hook) return {};
  return (*hook)(op, path, bytes);
}

void note_checkpoint_save() {
  std::call_once(g_crash_once, [] {
    if (const char* env = std::getenv("EMBER_TEST_CRASH_AT"); env != nullptr && *env != '\0')
      g_crash = parse_crash_spec(env);
  });
  g_saves.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace detail
}  // namespace ember::io
