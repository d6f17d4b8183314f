// POSIX file helpers for the io layer (private): RAII descriptors, exact reads and writes that
// survive EINTR and short transfers, atomic replacement of a file, and read-only-source private
// memory mappings. Every failure is an IOError that names the operation, the path and the
// system's errno text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ember::io::detail {

/// strerror text for an errno value (thread-safe).
std::string errno_text(int err);

/// Throws IOError "<op>: cannot <action> '<path>': <errno text>".
[[noreturn]] void throw_errno(const char* op, const char* action, const std::string& path, int err);

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
