// IDX reading and writing. The payload is read straight into the tensor's memory (from the
// file, or inflated from the gzip bytes), so a 47 MB image file costs one copy, and every
// size is checked before anything is allocated: a 16-byte file claiming 2^64 elements must
// fail with a message, not an allocation of exabytes.
#include "ember/data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <vector>

namespace ember::data {
namespace {

// Deflate never expands data by more than 1032:1, so a gzip stream of n bytes decompresses to
// at most about 1032 * n bytes; a header that claims more is truncated for sure.
constexpr uint64_t kMaxDeflateRatio = 1032;

// A stream of bytes with a known upper bound on what is left.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes; returns fewer only at the end of the data.
  virtual size_t read(void* dst, size_t n) = 0;
  // An upper bound of the bytes left.
  virtual uint64_t max_remaining() const = 0;
  // True when max_remaining() is exact.
  virtual bool exact() const = 0;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t read(void* dst, size_t n) override {
    size_t k = std::min(n, n_ - pos_);
    if (k > 0) std::memcpy(dst, p_ + pos_, k);
    pos_ += k;
    return k;
  }
  uint64_t max_remaining() const override { return n_ - pos_; }
  bool exact() const override { return true; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

class FileSource final : public ByteSource {
 public:
  FileSource(std::FILE* f, uint64_t size, std::string name) : f_(f), left_(size), name_(std::move(name)) {}
  size_t read(void* dst, size_t n) override {
    size_t k = std::fread(dst, 1, n, f_);
    if (k < n && std::ferror(f_)) EMBER_THROW(IOError, "read_idx: error reading '", name_, "': ", std::strerror(errno));
    left_ -= std::min<uint64_t>(left_, k);
    return k;
  }
  uint64_t max_remaining() const override { return left_; }
  bool exact() const override { return true; }

 private:
  std::FILE* f_;
  uint64_t left_;
  std::string name_;
};

// Inflates a complete gzip file held in memory (one or more concatenated members).
class GzipSource final : public ByteSource {
 public:
  GzipSource(const uint8_t* p, size_t n, std::string name) : p_(p), n_(n), name_(std::move(name)) {
    std::memset(&zs_, 0, sizeof(zs_));
    // 16 + MAX_WBITS: expect a gzip header and check the CRC-32 and length trailer.
    int rc = inflateInit2(&zs_, 16 + MAX_WBITS);
    if (rc != Z_OK) EMBER_THROW(IOError, "read_idx: '", name_, "': zlib inflateInit2 failed (code ", rc, ")");
    zs_.next_in = const_cast<Bytef*>(p_);
  }
  ~GzipSource() override { inflateEnd(&zs_); }

  size_t read(void* dst, size_t n) override {
    auto* out = static_cast<uint8_t*>(dst);
    size_t done = 0;
    while (done < n && !finished_) {
      if (zs_.avail_in == 0) refill();
      const size_t want = std::min<size_t>(n - done, kChunk);
      zs_.next_out = out + done;
      zs_.avail_out = static_cast<uInt>(want);
      const bool input_exhausted = zs_.avail_in == 0;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      done += want - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        refill();
        if (zs_.avail_in == 0) {
          finished_ = true;
        } else if (zs_.avail_in >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b) {
          inflateReset(&zs_);  // another gzip member follows (as `cat a.gz b.gz` makes)
        } else {
          EMBER_THROW(IOError, "read_idx: '", name_, "': ", consumed_in(), " bytes of garbage after the gzip data");
        }
      } else if (rc == Z_BUF_ERROR && input_exhausted) {
        EMBER_THROW(IOError, "read_idx: '", name_, "': truncated gzip stream: the compressed data (", n_,
                    " bytes) ends before the end of the stream; the file is incomplete");
      } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
        EMBER_THROW(IOError, "read_idx: '", name_, "': corrupt gzip data at compressed byte ", in_offset(), ": ",
                    zs_.msg ? zs_.msg : "invalid data");
      } else if (rc == Z_MEM_ERROR) {
        EMBER_THROW(OutOfMemory, "read_idx: '", name_, "': zlib ran out of memory");
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        EMBER_THROW(IOError, "read_idx: '", name_, "': zlib inflate failed (code ", rc, ")");
      }
    }
    produced_ += done;
    return done;
  }
  uint64_t max_remaining() const override {
    if (finished_) return 0;
    uint64_t in_left = n_ - in_offset();
    // Plus what inflate may hold in its window from input already consumed.
    return in_left * kMaxDeflateRatio + (uint64_t{1} << 16);
  }
  bool exact() const override { return false; }

 private:
  static constexpr size_t kChunk = size_t{1} << 30;  // zlib counts in 32-bit uInt
  size_t in_offset() const { return fed_ - zs_.avail_in; }
  size_t consumed_in() const { return n_ - in_offset(); }
  void refill() {
    if (zs_.avail_in != 0 || fed_ >= n_) return;
    size_t k = std::min(n_ - fed_, kChunk);
    zs_.next_in = const_cast<Bytef*>(p_ + fed_);
    zs_.avail_in = static_cast<uInt>(k);
    fed_ += k;
  }

  const uint8_t* p_;
  size_t n_;
  std::string name_;
  z_stream zs_;
  size_t fed_ = 0;  // input bytes handed to zlib so far
  uint64_t produced_ = 0;
  bool finished_ = false;
};

struct ElemType {
  uint8_t code;
  const char* name;
  size_t file_size;  // bytes per element in the file
  DType dtype;       // what Ember stores
};

constexpr ElemType kTypes[] = {
    {0x08, "unsigned byte", 1, kUInt8}, {0x09, "signed byte", 1, kInt32}, {0x0B, "int16", 2, kInt32},
    {0x0C, "int32", 4, kInt32},         {0x0D, "float32", 4, kFloat32},   {0x0E, "float64", 8, kFloat64},
};

const ElemType* find_type(uint8_t code) {
  for (const ElemType& t : kTypes)
    if (t.code == code) return &t;
  return nullptr;
}

std::string hex_byte(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", b);
  return buf;
}

uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads until n bytes or the end; returns how many arrived.
size_t read_fully(ByteSource& src, void* dst, size_t n) {
  size_t done = 0;
  while (done < n) {
    size_t k = src.read(static_cast<uint8_t*>(dst) + done, n - done);
    if (k == 0) break;
    done += k;
  }
  return done;
}

uint64_t drain(ByteSource& src) {
  std::vector<uint8_t> scratch(size_t{1} << 16);
  uint64_t total = 0;
  while (size_t k = src.read(scratch.data(), scratch.size())) total += k;
  return total;
}

// Big-endian file order → host order, in place.
void to_host_order(void* p, int64_t count, size_t width) {
  if constexpr (std::endian::native == std::endian::big) return;
  if (width == 2) {
    auto* q = static_cast<uint16_t*>(p);
    for (int64_t i = 0; i < count; ++i) q[i] = __builtin_bswap16(q[i]);
  } else if (width == 4) {
    auto* q = static_cast<uint32_t*>(p);
    for (int64_t i = 0; i < count; ++i) q[i] = __builtin_bswap32(q[i]);
  } else if (width == 8) {
    auto* q = static_cast<uint64_t*>(p);
    for (int64_t i = 0; i < count; ++i) q[i] = __builtin_bswap64(q[i]);
  }
}

Tensor parse(ByteSource& src, const std::string& name) {
  uint8_t magic[4];
  size_t got = read_fully(src, magic, 4);
  EMBER_CHECK(got == 4, IOError, "read_idx: '", name,
              "' is too short for an IDX header: expected 4 magic bytes, found ", got);
  EMBER_CHECK(magic[0] == 0 && magic[1] == 0, IOError, "read_idx: '", name,
              "' is not an IDX file: expected magic bytes 0x00 0x00 <type> <ndim>, found ", hex_byte(magic[0]), " ",
              hex_byte(magic[1]), " ", hex_byte(magic[2]), " ", hex_byte(magic[3]));
  const ElemType* type = find_type(magic[2]);
  EMBER_CHECK(type != nullptr, IOError, "read_idx: '", name, "': unknown IDX element type byte ", hex_byte(magic[2]),
              " (supported: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)");
  const int ndim = magic[3];
  EMBER_CHECK(ndim > 0, IOError, "read_idx: '", name,
              "': the header declares 0 dimensions; an IDX file needs at least one");

  std::vector<uint8_t> dim_bytes(4 * static_cast<size_t>(ndim));
  got = read_fully(src, dim_bytes.data(), dim_bytes.size());
  EMBER_CHECK(got == dim_bytes.size(), IOError, "read_idx: '", name, "': truncated header: expected ", dim_bytes.size(),
              " bytes of sizes for ", ndim, " dimensions, found ", got);
  Shape shape(ndim);
  for (int i = 0; i < ndim; ++i) shape[i] = load_be32(&dim_bytes[4 * i]);

  // Element and byte counts with overflow checks (each size is < 2^32, but 3 of them are not).
  // The product of the non-zero sizes must fit too, even when a zero size makes the count 0:
  // the tensor's strides are products of the sizes.
  int64_t count = 1, extent = 1;
  for (int64_t d : shape) {
    EMBER_CHECK(!__builtin_mul_overflow(extent, std::max<int64_t>(d, 1), &extent), IOError, "read_idx: '", name,
                "': sizes ", shape_str(shape), " overflow a 64-bit element count");
    count *= d;  // |count| <= extent: cannot overflow
  }
  int64_t nbytes = 0;
  EMBER_CHECK(!__builtin_mul_overflow(count, static_cast<int64_t>(type->file_size), &nbytes), IOError, "read_idx: '",
              name, "': sizes ", shape_str(shape), " of ", type->name, " overflow a 64-bit byte count");
  const uint64_t header_bytes = 4 + dim_bytes.size();
  auto describe = [&] {
    return detail::str_cat(" bytes of ", type->name, " data for shape ", shape_str(shape), " after the ", header_bytes,
                           "-byte header");
  };

  // Reject impossible sizes before allocating.
  const uint64_t avail = src.max_remaining();
  if (src.exact()) {
    EMBER_CHECK(avail == static_cast<uint64_t>(nbytes), IOError, "read_idx: '", name,
                "': ", avail < static_cast<uint64_t>(nbytes) ? "truncated payload" : "trailing data", ": expected ",
                nbytes, describe(), ", found ", avail);
  } else {
    EMBER_CHECK(static_cast<uint64_t>(nbytes) <= avail, IOError, "read_idx: '", name, "': truncated payload: expected ",
                nbytes, describe(), ", but the remaining compressed data can hold at most ", avail);
  }

  Tensor out;
  const bool same_width = itemsize(type->dtype) == type->file_size;
  std::vector<uint8_t> staging;
  void* dst = nullptr;
  size_t got_payload = 0;
  if (src.exact()) {
    // The size is known to be there: read straight into the tensor (or staging, to widen).
    out = empty(shape, {.dtype = type->dtype});
    if (same_width) {
      dst = out.data_ptr();
    } else {
      staging.resize(static_cast<size_t>(nbytes));
      dst = staging.data();
    }
    got_payload = read_fully(src, dst, static_cast<size_t>(nbytes));
  } else {
    // A compressed stream can hold up to ~1000 times its size, so the bound above still allows
    // a small file to claim far more than it holds: grow the buffer as the data actually arrive
    // (doubling, from 1 MiB) and allocate the tensor only once they all have.
    size_t want = static_cast<size_t>(nbytes);
    while (got_payload < want) {
      const size_t next = std::min(want, std::max<size_t>(size_t{1} << 20, 2 * staging.size()));
      staging.resize(next);
      const size_t k = read_fully(src, staging.data() + got_payload, next - got_payload);
      got_payload += k;
      if (got_payload < next) break;
    }
    dst = staging.data();
  }
  if (got_payload < static_cast<size_t>(nbytes)) {
    uint64_t found = got_payload + drain(src);
    EMBER_THROW(IOError, "read_idx: '", name, "': truncated payload: expected ", nbytes, describe(), ", found ", found);
  }
  if (uint64_t extra = drain(src); extra > 0) {
    EMBER_THROW(IOError, "read_idx: '", name, "': trailing data: expected ", nbytes, describe(), ", found ",
                static_cast<uint64_t>(nbytes) + extra, " (", extra, " extra bytes)");
  }
  if (!out.defined()) {
    out = empty(shape, {.dtype = type->dtype});
    if (same_width) {
      if (nbytes > 0) std::memcpy(out.data_ptr(), staging.data(), static_cast<size_t>(nbytes));
      dst = out.data_ptr();
    }
  }

  if (same_width) {
    to_host_order(dst, count, type->file_size);
  } else {
    auto* o = out.data<int32_t>();
    if (type->file_size == 1) {
      const auto* s = reinterpret_cast<const int8_t*>(staging.data());
      for (int64_t i = 0; i < count; ++i) o[i] = s[i];
    } else {
      to_host_order(staging.data(), count, 2);
      const auto* s = reinterpret_cast<const int16_t*>(staging.data());
      for (int64_t i = 0; i < count; ++i) o[i] = s[i];
    }
  }
  return out;
}

bool is_gzip(const uint8_t* p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

Tensor parse_idx(const void* data, size_t size, const std::string& name) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (is_gzip(p, size)) {
    GzipSource src(p, size, name);
    return parse(src, name);
  }
  MemorySource src(p, size);
  return parse(src, name);
}

Tensor read_idx(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  EMBER_CHECK(f != nullptr, IOError, "read_idx: cannot open '", path, "': ", std::strerror(errno));
  EMBER_CHECK(std::fseek(f.get(), 0, SEEK_END) == 0, IOError, "read_idx: cannot seek in '", path, "'");
  long end = std::ftell(f.get());
  EMBER_CHECK(end >= 0, IOError, "read_idx: cannot size '", path, "' (not a regular file?)");
  std::rewind(f.get());
  const auto size = static_cast<uint64_t>(end);

  uint8_t head[2] = {0, 0};
  size_t got = std::fread(head, 1, 2, f.get());
  std::rewind(f.get());
  if (is_gzip(head, got)) {
    // Compressed files are small next to what they hold; read them whole and inflate into the tensor.
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    EMBER_CHECK(std::fread(bytes.data(), 1, bytes.size(), f.get()) == bytes.size(), IOError,
                "read_idx: error reading '", path, "'");
    GzipSource src(bytes.data(), bytes.size(), path);
    return parse(src, path);
  }
  FileSource src(f.get(), size, path);
  return parse(src, path);
}

void write_idx(const std::string& path, const Tensor& t, bool gzip) {
  EMBER_CHECK(t.defined(), ValueError, "write_idx: undefined tensor");
  EMBER_CHECK(t.is_cpu(), DeviceError, "write_idx: the tensor is on ", t.device().str(), "; move it to the CPU first");
  EMBER_CHECK(t.dim() >= 1 && t.dim() <= 255, ValueError, "write_idx: IDX needs 1 to 255 dimensions, got ", t.dim());
  uint8_t code = 0;
  switch (t.dtype()) {
    case kUInt8: code = 0x08; break;
    case kInt32: code = 0x0C; break;
    case kFloat32: code = 0x0D; break;
    case kFloat64: code = 0x0E; break;
    default:
      EMBER_THROW(DTypeError, "write_idx: IDX stores uint8, int32, float32 or float64, not ", dtype_name(t.dtype()));
  }
  std::vector<uint8_t> bytes{0, 0, code, static_cast<uint8_t>(t.dim())};
  for (int64_t d : t.shape()) {
    EMBER_CHECK(d <= std::numeric_limits<uint32_t>::max(), ValueError, "write_idx: size ", d,
                " does not fit IDX's 32-bit sizes");
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<uint8_t>(static_cast<uint64_t>(d) >> s));
  }
  Tensor c = t.contiguous();
  const size_t header = bytes.size();
  bytes.resize(header + static_cast<size_t>(c.nbytes()));
  if (c.nbytes() > 0) std::memcpy(bytes.data() + header, c.data_ptr(), static_cast<size_t>(c.nbytes()));
  to_host_order(bytes.data() + header, c.numel(), c.element_size());  // a swap is its own inverse

  if (!gzip) {
    FilePtr f(std::fopen(path.c_str(), "wb"));
    EMBER_CHECK(f != nullptr, IOError, "write_idx: cannot create '", path, "': ", std::strerror(errno));
    EMBER_CHECK(std::fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size() && std::fflush(f.get()) == 0,
                IOError, "write_idx: error writing '", path, "': ", std::strerror(errno));
    return;
  }
  gzFile gz = gzopen(path.c_str(), "wb");
  EMBER_CHECK(gz != nullptr, IOError, "write_idx: cannot create '", path, "': ", std::strerror(errno));
  size_t done = 0;
  bool ok = true;
  while (ok && done < bytes.size()) {
    unsigned k = static_cast<unsigned>(std::min<size_t>(bytes.size() - done, size_t{1} << 30));
    ok = gzwrite(gz, bytes.data() + done, k) == static_cast<int>(k);
    done += k;
  }
  ok = (gzclose(gz) == Z_OK) && ok;
  EMBER_CHECK(ok, IOError, "write_idx: error writing '", path, "'");
}

}  // namespace ember::data
