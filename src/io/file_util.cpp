#include "io/file_util.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <system_error>

#include "ember/core/error.hpp"

namespace ember::io::detail {

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

void throw_errno(const char* op, const char* action, const std::string& path, int err) {
  EMBER_THROW(IOError, op, ": cannot ", action, " '", path, "': ", errno_text(err));
}

// ------------------------------------------------------------------ FileDescriptor
FileDescriptor& FileDescriptor::operator=(FileDescriptor&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

int FileDescriptor::close() {
  if (fd_ < 0) return 0;
  // Linux releases the descriptor even when close fails (including EINTR): never retry.
  int rc = ::close(fd_);
  fd_ = -1;
  return rc == 0 ? 0 : errno;
}

void FileDescriptor::reset() { (void)close(); }

// ------------------------------------------------------------------ reading
FileDescriptor open_regular_file(const char* op, const std::string& path, uint64_t* size) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block the open
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_errno(op, "open", path, errno);
  FileDescriptor f(fd);
  struct stat st {};
  if (::fstat(f.get(), &st) != 0) throw_errno(op, "stat", path, errno);
  if (S_ISDIR(st.st_mode)) throw_errno(op, "read", path, EISDIR);
  EMBER_CHECK(S_ISREG(st.st_mode), IOError, op, ": cannot read '", path, "': not a regular file");
  EMBER_CHECK(st.st_size >= 0, IOError, op, ": cannot read '", path, "': negative file size");
  *size = static_cast<uint64_t>(st.st_size);
  return f;
}

void read_exact_at(const char* op, const std::string& path, int fd, void* buf, size_t n, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    // pread takes an off_t; offsets past its range cannot name bytes of a real file.
    EMBER_CHECK(offset <= static_cast<uint64_t>(std::numeric_limits<off_t>::max()), IOError, op, ": cannot read '",
                path, "': offset ", offset, " is out of range");
    const size_t chunk = n < (size_t{1} << 30) ? n : (size_t{1} << 30);
    ssize_t got = ::pread(fd, p, chunk, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno(op, "read", path, errno);
    }
    EMBER_CHECK(got > 0, IOError, op, ": cannot read '", path, "': unexpected end of file at byte ", offset,
                " (was the file truncated while it was being read?)");
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

// ------------------------------------------------------------------ MappedFile
std::shared_ptr<MappedFile> MappedFile::map(const char* op, const std::string& path, int fd, uint64_t size) {
  EMBER_CHECK(size > 0 && size <= std::numeric_limits<size_t>::max(), IOError, op, ": cannot map '", path, "': size ",
              size, " cannot be mapped");
  // MAP_PRIVATE + PROT_WRITE: tensors may be modified in place; the pages are then copied and
  // the file never changes.
  void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) throw_errno(op, "memory-map", path, errno);
  return std::shared_ptr<MappedFile>(new MappedFile(static_cast<uint8_t*>(p), static_cast<size_t>(size)));
}

MappedFile::~MappedFile() { ::munmap(data_, size_); }

// ------------------------------------------------------------------ AtomicFileWriter
AtomicFileWriter::AtomicFileWriter(const char* op, std::string path) : op_(op), path_(std::move(path)) {
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0;; ++attempt) {
    tmp_path_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
    // 0666 so that the process umask decides the final permissions, as for a plain open().
    int fd = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      fd_ = FileDescriptor(fd);
      return;
    }
    const int err = errno;
    if ((err == EEXIST || err == EINTR) && attempt < 100) continue;
    throw_errno(op_, "create", path_, err);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) {
    fd_.reset();
    ::unlink(tmp_path_.c_str());
  }
}

void AtomicFileWriter::write(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const size_t chunk = n < (size_t{1} << 30) ? n : (size_t{1} << 30);
    ssize_t put = ::write(fd_.get(), p, chunk);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw_errno(op_, "write", path_, errno);
    }
    p += put;
    n -= static_cast<size_t>(put);
  }
}

void AtomicFileWriter::commit() {
  // close() reports delayed write errors (NFS, quota); a file that failed to close is not kept.
  if (int err = fd_.close(); err != 0) throw_errno(op_, "write", path_, err);
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) throw_errno(op_, "write", path_, errno);
  committed_ = true;
}

}  // namespace ember::io::detail
