#include "io/file_util.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <system_error>
#include <vector>

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

int FileDescriptor::close_checked(const std::string& path) {
  if (fd_ < 0) return 0;
  const int fd = fd_;
  fd_ = -1;
  return sys_close(fd, path);
}

void FileDescriptor::reset() { (void)close(); }

// ------------------------------------------------------------------ the fault seam
using testing::Fault;
using testing::FileOp;

int sys_open(const std::string& path, int flags, mode_t mode, int* fd) {
  *fd = -1;
  if (const Fault f = consult_fault_hook(FileOp::open, path, 0); f.error != 0) return f.error;
  int r;
  do {
    r = ::open(path.c_str(), flags, mode);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return errno;
  *fd = r;
  return 0;
}

int sys_write(int fd, const std::string& path, const void* data, size_t n, size_t* written) {
  *written = 0;
  const Fault f = consult_fault_hook(FileOp::write, path, n);
  if (f.error != 0) return f.error;
  if (f.short_write >= 0 && static_cast<unsigned long long>(f.short_write) < n) n = static_cast<size_t>(f.short_write);
  if (n == 0) return 0;  // an injected write of 0 bytes: the caller sees no progress
  ssize_t put;
  do {
    put = ::write(fd, data, n);
  } while (put < 0 && errno == EINTR);
  if (put < 0) return errno;
  *written = static_cast<size_t>(put);
  return 0;
}

int sys_fsync(int fd, const std::string& path) {
  if (const Fault f = consult_fault_hook(FileOp::fsync, path, 0); f.error != 0) return f.error;
  int r;
  do {
    r = ::fsync(fd);
  } while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : errno;
}

int sys_close(int fd, const std::string& path) {
  const Fault f = consult_fault_hook(FileOp::close, path, 0);
  // Linux releases the descriptor even when close fails (including EINTR): never retry. An
  // injected failure still closes the real descriptor, as a failing close(2) does.
  const int r = ::close(fd);
  if (f.error != 0) return f.error;
  return r == 0 ? 0 : errno;
}

int sys_rename(const std::string& from, const std::string& to) {
  if (const Fault f = consult_fault_hook(FileOp::rename, to, 0); f.error != 0) return f.error;
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

int sys_exchange(const std::string& a, const std::string& b) {
  if (const Fault f = consult_fault_hook(FileOp::rename, b, 0); f.error != 0) return f.error;
#if defined(RENAME_EXCHANGE)
  return ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0 ? 0 : errno;
#else
  return ENOSYS;
#endif
}

int sys_mkdir(const std::string& path, mode_t mode) {
  if (const Fault f = consult_fault_hook(FileOp::mkdir, path, 0); f.error != 0) return f.error;
  return ::mkdir(path.c_str(), mode) == 0 ? 0 : errno;
}

int sys_fsync_dir(const std::string& path) {
  if (const Fault f = consult_fault_hook(FileOp::fsync_dir, path, 0); f.error != 0) return f.error;
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  int r;
  do {
    r = ::fsync(fd);
  } while (r != 0 && errno == EINTR);
  const int err = r == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

int sys_remove(const std::string& path, bool directory) {
  if (const Fault f = consult_fault_hook(FileOp::remove, path, 0); f.error != 0) return f.error;
  const int r = directory ? ::rmdir(path.c_str()) : ::unlink(path.c_str());
  return r == 0 ? 0 : errno;
}

void write_all(const char* op, int fd, const std::string& path, const std::string& shown_path, const void* data,
               size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const size_t chunk = n < (size_t{1} << 30) ? n : (size_t{1} << 30);
    size_t put = 0;
    if (int err = sys_write(fd, path, p, chunk, &put); err != 0) throw_errno(op, "write", shown_path, err);
    // write(2) returns 0 for a regular file only when nothing more fits.
    if (put == 0) throw_errno(op, "write", shown_path, ENOSPC);
    p += put;
    n -= put;
  }
}

int list_directory(const std::string& dir, std::vector<std::string>* names) {
  names->clear();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names->push_back(name);
  }
  ::closedir(d);
  return 0;
}

int remove_tree(const std::string& path) noexcept {
  try {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? 0 : errno;
    if (!S_ISDIR(st.st_mode)) return sys_remove(path, false);
    std::vector<std::string> names;
    int first = list_directory(path, &names);
    for (const std::string& name : names)
      if (int err = remove_tree(path + "/" + name); err != 0 && first == 0) first = err;
    if (int err = sys_remove(path, true); err != 0 && first == 0) first = err;
    return first;
  } catch (...) {  // a throwing fault hook or bad_alloc: cleanup is best effort
    return EIO;
  }
}

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
    int fd = -1;
    const int err = sys_open(tmp_path_, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666, &fd);
    if (err == 0) {
      fd_ = FileDescriptor(fd);
      return;
    }
    if (err == EEXIST && attempt < 100) continue;
    throw_errno(op_, "create", path_, err);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) {
    try {
      (void)fd_.close_checked(tmp_path_);
      (void)sys_remove(tmp_path_, false);
    } catch (...) {  // a throwing fault hook: the destructor must not throw
      fd_.reset();
    }
  }
}

void AtomicFileWriter::write(const void* data, size_t n) { write_all(op_, fd_.get(), tmp_path_, path_, data, n); }

void AtomicFileWriter::commit() {
  // close() reports delayed write errors (NFS, quota); a file that failed to close is not kept.
  if (int err = fd_.close_checked(tmp_path_); err != 0) throw_errno(op_, "write", path_, err);
  if (int err = sys_rename(tmp_path_, path_); err != 0) throw_errno(op_, "write", path_, err);
  committed_ = true;
}

}  // namespace ember::io::detail
