// Test seams in Ember's file-writing layer. Every file Ember writes (safetensors, checkpoints,
// trainer.json) goes through one set of POSIX wrappers (src/io/file_util.cpp); these hooks let
// tests make those calls fail the way a real disk does (ENOSPC, EIO, EROFS, short writes) and
// let a test process die at chosen points of a checkpoint save. They cost one relaxed atomic
// load per call when unused. Not for production use.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "ember/core/macros.hpp"

namespace ember::io::testing {

/// The file-system operations of the writing layer.
enum class FileOp { open, write, fsync, close, rename, mkdir, fsync_dir, remove };

EMBER_API const char* file_op_name(FileOp op);

/// What a hook decides for one call.
struct Fault {
  /// 0: perform the call. Otherwise the call is not performed and fails with this errno
  /// (e.g. ENOSPC, EIO, EROFS).
  int error = 0;
  /// For FileOp::write with error == 0: when >= 0, only this many bytes (fewer than asked) are
  /// written by this call, as a short write; the layer's retry loop then continues.
  long long short_write = -1;
};

/// Called before every operation with the operation, the path it concerns and (for write) the
/// byte count asked for. An empty function removes the hook. Process-wide; tests set it, run a
/// save, and clear it (see ScopedFaultHook).
///
/// The path is the one the system call names: for rename the destination (an atomic exchange
/// of two directories, used to replace a checkpoint of the same step, is also reported as
/// rename with the final name as the path); for write, fsync and close the file being written
/// (a temporary name such as "x.safetensors.tmp.<pid>.<k>" or a file inside
/// "DIR/.step-N.tmp-<pid>-<k>/"); for fsync_dir the directory (its open, fsync and close count
/// as that one operation). The hook may be called from any thread that writes.
using FaultHook = std::function<Fault(FileOp op, const std::string& path, size_t bytes)>;
EMBER_API void set_fault_hook(FaultHook hook);

/// Sets a hook for the scope and removes it at the end.
class ScopedFaultHook {
 public:
  explicit ScopedFaultHook(FaultHook hook) { set_fault_hook(std::move(hook)); }
  ~ScopedFaultHook() { set_fault_hook({}); }
  ScopedFaultHook(const ScopedFaultHook&) = delete;
  ScopedFaultHook& operator=(const ScopedFaultHook&) = delete;
};

/// Named points inside CheckpointManager::save where a test can kill the process:
///   "after_write"  every file's bytes written (not yet fsynced) into the temporary directory
///   "after_fsync"  files and the temporary directory fsynced, before the rename
///   "after_rename" the directory renamed into place, before the run directory is fsynced and
///                  old checkpoints are pruned
/// Armed through the environment variable EMBER_TEST_CRASH_AT="<point>:<n>": the process
/// raises SIGKILL at <point> during its n-th checkpoint save (n counts calls of
/// CheckpointManager::save in the process from 1, failed ones included). Read once, at the
/// first save; a malformed value makes that save (and every later one) throw ValueError.
/// Tests use it with real processes (examples/fashion_mnist, tests/unit/test_disk_faults.cpp).
EMBER_API void crash_point(const char* point);

}  // namespace ember::io::testing
