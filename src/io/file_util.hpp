// POSIX file helpers for the io layer (private): RAII descriptors, exact reads and writes that
// survive EINTR and short transfers, atomic replacement of a file, and read-only-source private
// memory mappings. Every failure is an IOError that names the operation, the path and the
// system's errno text.
//
// Every write-side system call (open for writing, write, fsync, close of a written file,
// rename, mkdir, directory fsync, unlink/rmdir) goes through the sys_* wrappers below, which
// first consult the test fault hook (ember/io/fault_injection.hpp): one relaxed atomic load
// when no hook is set.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/io/fault_injection.hpp"

namespace ember::io::detail {

/// strerror text for an errno value (thread-safe).
std::string errno_text(int err);

/// Throws IOError "<op>: cannot <action> '<path>': <errno text>".
[[noreturn]] void throw_errno(const char* op, const char* action, const std::string& path, int err);

// ------------------------------------------------------------------ the fault seam
/// The hook's decision for one call (a default Fault when no hook is set). Defined in
/// fault_injection.cpp.
testing::Fault consult_fault_hook(testing::FileOp op, const std::string& path, size_t bytes);
/// Counts one CheckpointManager::save for crash_point (reads EMBER_TEST_CRASH_AT at the first
/// call; throws ValueError when it is malformed).
void note_checkpoint_save();

// The sys_* wrappers return 0 on success or the errno of the failure (EINTR is retried). A
// fault the hook injects is returned exactly as if the system call had failed with it.

/// open(path, flags, mode); *fd receives the descriptor.
int sys_open(const std::string& path, int flags, mode_t mode, int* fd);
/// One write(2) of at most n bytes; *written receives the count (possibly short, possibly 0).
int sys_write(int fd, const std::string& path, const void* data, size_t n, size_t* written);
/// fsync(2).
int sys_fsync(int fd, const std::string& path);
/// close(2). The descriptor is released even when this reports an error (Linux semantics).
int sys_close(int fd, const std::string& path);
/// rename(2); the hook sees `to`.
int sys_rename(const std::string& from, const std::string& to);
/// Atomically swaps two existing names (renameat2 RENAME_EXCHANGE); EINVAL/ENOSYS where the
/// file system or kernel cannot. The hook sees FileOp::rename with `b`.
int sys_exchange(const std::string& a, const std::string& b);
/// mkdir(2).
int sys_mkdir(const std::string& path, mode_t mode);
/// Opens the directory read-only, fsyncs and closes it (one FileOp::fsync_dir for the hook).
int sys_fsync_dir(const std::string& path);
/// unlink(2), or rmdir(2) when `directory`.
int sys_remove(const std::string& path, bool directory);

/// Writes all n bytes, retrying short writes and EINTR. Throws IOError
/// "<op>: cannot write '<shown_path>': <errno text>"; a write that makes no progress is
/// reported as ENOSPC.
void write_all(const char* op, int fd, const std::string& path, const std::string& shown_path, const void* data,
               size_t n);

/// The names in directory `dir` (without "." and ".."), into *names; returns 0 or the errno of
/// the failed opendir (then *names is empty).
int list_directory(const std::string& dir, std::vector<std::string>* names);

/// Removes `path` and, when it is a directory (not a symbolic link), everything under it,
/// through sys_remove. Best effort: returns 0, or the first errno met (it goes on after it).
int remove_tree(const std::string& path) noexcept;

/// An owned file descriptor, closed on destruction.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { reset(); }
  FileDescriptor(FileDescriptor&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileDescriptor& operator=(FileDescriptor&& o) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /// Closes now; returns 0 or the errno of a failed close.
  int close();
  /// Closes now through the fault seam (sys_close with `path`); returns 0 or the errno.
  int close_checked(const std::string& path);
  void reset();

 private:
  int fd_ = -1;
};

/// Opens `path` for reading and checks that it is a regular file; `size` receives its length.
FileDescriptor open_regular_file(const char* op, const std::string& path, uint64_t* size);

/// Reads exactly n bytes at `offset`; throws IOError on error or when the file ends first.
void read_exact_at(const char* op, const std::string& path, int fd, void* buf, size_t n, uint64_t offset);

/// A private (copy-on-write) mapping of a whole file, unmapped on destruction.
class MappedFile {
 public:
  /// Maps `size` bytes (> 0) of the open file `fd`.
  static std::shared_ptr<MappedFile> map(const char* op, const std::string& path, int fd, uint64_t size);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile(uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t* data_;
  size_t size_;
};

/// Writes a file under a temporary name beside `path` and renames it over `path` on commit(),
/// so readers never see a partial file. Destroying an uncommitted writer removes the temporary.
class AtomicFileWriter {
 public:
  AtomicFileWriter(const char* op, std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  /// Appends n bytes.
  void write(const void* data, size_t n);
  /// Closes the temporary and renames it to the destination.
  void commit();

 private:
  const char* op_;
  std::string path_;
  std::string tmp_path_;
  FileDescriptor fd_;
  bool committed_ = false;
};

}  // namespace ember::io::detail
