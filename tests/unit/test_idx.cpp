// IDX reader: the real Fashion-MNIST files, small hand-made files (raw and gzip) with known
// contents, and malformed files that must each fail with an IOError that says what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ember/data/fashion_mnist.hpp"
#include "ember/core/allocator.hpp"
#include "ember/data/idx.hpp"

namespace fs = std::filesystem;
using namespace ember;

namespace {

// tests/data/idx, found from this file so the binary runs from any directory.
std::string idx_file(const std::string& name) {
  return (fs::path(__FILE__).parent_path().parent_path() / "data" / "idx" / name).string();
}

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

// Runs fn, expects an IOError, and returns its message.
template <class F>
std::string io_error_of(F&& fn) {
  try {
    fn();
  } catch (const IOError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected IOError, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected IOError, nothing was thrown";
  return {};
}

void expect_contains(const std::string& msg, const std::string& part) {
  EXPECT_NE(msg.find(part), std::string::npos) << "message \"" << msg << "\" lacks \"" << part << "\"";
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// CRC-32 (gzip's, reflected 0xEDB88320) from its definition, for the gzip writer below.
uint32_t crc32_bitwise(const std::vector<uint8_t>& b) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t x : b) {
    c ^= x;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? 0xEDB88320u : 0u);
  }
  return ~c;
}

// A gzip file holding `b` in stored (uncompressed) deflate blocks (RFC 1951 3.2.4, RFC 1952):
// lets a test build gzip streams of any content without zlib.
std::vector<uint8_t> gzip_stored(const std::vector<uint8_t>& b) {
  std::vector<uint8_t> out = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  size_t at = 0;
  do {
    const size_t n = std::min<size_t>(b.size() - at, 65535);
    const bool last = at + n == b.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<uint8_t>(n)), out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(~n)), out.push_back(static_cast<uint8_t>(~n >> 8));
    out.insert(out.end(), b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
  } while (at < b.size());
  for (uint32_t v : {crc32_bitwise(b), static_cast<uint32_t>(b.size())})
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

// An IDX header: type byte and big-endian sizes.
std::vector<uint8_t> idx_header(uint8_t type, const std::vector<uint32_t>& dims) {
  std::vector<uint8_t> h = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<uint8_t>(d >> s));
  return h;
}

}  // namespace

// ------------------------------------------------------------------ real Fashion-MNIST
TEST(IdxFashionMnist, TestSetShapesLabelsAndCounts) {
  if (!fs::exists(std::string(kFashionDir) + "/t10k-labels-idx1-ubyte.gz")) GTEST_SKIP() << "no " << kFashionDir;
  Tensor images = data::read_idx(std::string(kFashionDir) + "/t10k-images-idx3-ubyte.gz");
  Tensor labels = data::read_idx(std::string(kFashionDir) + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(images.shape(), (Shape{10000, 28, 28}));
  EXPECT_EQ(images.dtype(), kUInt8);
  EXPECT_EQ(labels.shape(), (Shape{10000}));
  EXPECT_EQ(labels.dtype(), kUInt8);
  std::vector<int64_t> count(10, 0);
  const uint8_t* l = labels.data<uint8_t>();
  for (int64_t i = 0; i < 10000; ++i) {
    ASSERT_LT(l[i], 10) << "label " << i;
    ++count[l[i]];
  }
  for (int c = 0; c < 10; ++c) EXPECT_EQ(count[c], 1000) << "class " << c;
  EXPECT_EQ(l[0], 9);  // "Ankle boot"
  EXPECT_STREQ(data::FashionMNIST::class_names()[l[0]], "Ankle boot");
  // The images are real pictures: some black background, some bright pixels.
  const uint8_t* p = images.data<uint8_t>();
  int64_t zeros = 0, bright = 0;
  for (int64_t i = 0; i < 784; ++i) {
    zeros += p[i] == 0;
    bright += p[i] > 200;
  }
  EXPECT_GT(zeros, 100);
  EXPECT_GT(bright, 10);
}

TEST(IdxFashionMnist, TrainSetShapes) {
  if (!fs::exists(std::string(kFashionDir) + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no " << kFashionDir;
  Tensor images = data::read_idx(std::string(kFashionDir) + "/train-images-idx3-ubyte.gz");
  Tensor labels = data::read_idx(std::string(kFashionDir) + "/train-labels-idx1-ubyte.gz");
  EXPECT_EQ(images.shape(), (Shape{60000, 28, 28}));
  EXPECT_EQ(labels.shape(), (Shape{60000}));
  std::vector<int64_t> count(10, 0);
  for (uint8_t v : labels.to_vector<uint8_t>()) {
    ASSERT_LT(v, 10);
    ++count[v];
  }
  for (int c = 0; c < 10; ++c) EXPECT_EQ(count[c], 6000) << "class " << c;
}

// ------------------------------------------------------------------ good small files
TEST(IdxRead, RawUnsignedBytes) {
  Tensor t = data::read_idx(idx_file("u8_2x3x4.idx"));
  ASSERT_EQ(t.shape(), (Shape{2, 3, 4}));
  ASSERT_EQ(t.dtype(), kUInt8);
  EXPECT_TRUE(t.is_contiguous());
  const uint8_t* p = t.data<uint8_t>();
  for (int i = 0; i < 24; ++i) EXPECT_EQ(p[i], (i * 7) % 256) << i;
}

TEST(IdxRead, GzipEqualsRaw) {
  Tensor raw = data::read_idx(idx_file("u8_2x3x4.idx"));
  Tensor gz = data::read_idx(idx_file("u8_2x3x4.idx.gz"));
  ASSERT_EQ(gz.shape(), raw.shape());
  EXPECT_EQ(gz.to_vector<int>(), raw.to_vector<int>());
}

TEST(IdxRead, ConcatenatedGzipMembers) {
  Tensor t = data::read_idx(idx_file("two_members.idx.gz"));
  ASSERT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.to_vector<int>(), data::read_idx(idx_file("u8_2x3x4.idx")).to_vector<int>());
}

TEST(IdxRead, SignedTypesWidenToInt32) {
  Tensor i8 = data::read_idx(idx_file("i8_4.idx"));
  EXPECT_EQ(i8.dtype(), kInt32);
  EXPECT_EQ(i8.to_vector<int32_t>(), (std::vector<int32_t>{-128, -1, 0, 127}));
  Tensor i16 = data::read_idx(idx_file("i16_5.idx"));
  EXPECT_EQ(i16.dtype(), kInt32);
  EXPECT_EQ(i16.to_vector<int32_t>(), (std::vector<int32_t>{-32768, -1, 0, 1, 32767}));
  Tensor i32 = data::read_idx(idx_file("i32_2x2.idx"));
  EXPECT_EQ(i32.shape(), (Shape{2, 2}));
  EXPECT_EQ(i32.to_vector<int32_t>(), (std::vector<int32_t>{INT32_MIN, -1, 0, INT32_MAX}));
}

TEST(IdxRead, FloatTypes) {
  Tensor f = data::read_idx(idx_file("f32_3.idx"));
  EXPECT_EQ(f.dtype(), kFloat32);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.5f, -2.25f, 3.0e38f}));
  Tensor d = data::read_idx(idx_file("f64_2.idx.gz"));
  EXPECT_EQ(d.dtype(), kFloat64);
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{0.1, -1e300}));
}

TEST(IdxRead, ZeroSizedDimensionIsAnEmptyTensor) {
  Tensor t = data::read_idx(idx_file("empty_0x28.idx"));
  EXPECT_EQ(t.shape(), (Shape{0, 28}));
  EXPECT_EQ(t.numel(), 0);
}

TEST(IdxRead, ParseFromMemory) {
  auto bytes = file_bytes(idx_file("u8_2x3x4.idx.gz"));
  Tensor t = data::parse_idx(bytes.data(), bytes.size(), "mem");
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.to_vector<int>()[23], (23 * 7) % 256);
}

TEST(IdxWrite, RoundTripRawAndGzip) {
  const std::string dir = ::testing::TempDir();
  Tensor f = tensor<float>({0.5f, -1.0f, 1e-20f, 7.0f, 8.0f, 9.0f}, {2, 3});
  for (bool gzip : {false, true}) {
    std::string path = dir + "/ember_idx_roundtrip" + (gzip ? ".gz" : "");
    data::write_idx(path, f, gzip);
    Tensor back = data::read_idx(path);
    EXPECT_EQ(back.shape(), f.shape());
    EXPECT_EQ(back.to_vector<float>(), f.to_vector<float>());
    auto bytes = file_bytes(path);
    if (gzip) {
      EXPECT_EQ(bytes[0], 0x1f);
    } else {
      // Big-endian header and payload, checked byte by byte: 0x3F000000 is 0.5f.
      ASSERT_EQ(bytes.size(), 4u + 8u + 24u);
      EXPECT_EQ((std::vector<uint8_t>(bytes.begin(), bytes.begin() + 16)),
                (std::vector<uint8_t>{0, 0, 0x0D, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0x3F, 0, 0, 0}));
    }
    fs::remove(path);
  }
}

TEST(IdxWrite, RejectsUnsupportedTensors) {
  const std::string path = ::testing::TempDir() + "/ember_idx_reject";
  EXPECT_THROW(data::write_idx(path, tensor<int64_t>({1, 2}), false), DTypeError);
  EXPECT_THROW(data::write_idx(path, scalar_tensor(1.0), false), ValueError);
  EXPECT_THROW(data::write_idx(path, Tensor(), false), ValueError);
  EXPECT_THROW(data::write_idx("/nonexistent-dir/x.idx", tensor<float>({1.f}), false), IOError);
}

// ------------------------------------------------------------------ malformed files
TEST(IdxMalformed, MissingFile) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("no_such_file.idx")); });
  expect_contains(msg, "no_such_file.idx");
  expect_contains(msg, "cannot open");
}

TEST(IdxMalformed, WrongMagic) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("bad_magic.idx")); });
  expect_contains(msg, "bad_magic.idx");
  expect_contains(msg, "0x01 0x00 0x08 0x01");
}

TEST(IdxMalformed, BadTypeByte) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("bad_type.idx")); });
  expect_contains(msg, "type byte 0x0A");
}

TEST(IdxMalformed, ZeroDimensions) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("zero_ndim.idx")); });
  expect_contains(msg, "0 dimensions");
}

TEST(IdxMalformed, TooShortForHeader) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("too_short.idx")); });
  expect_contains(msg, "too short");
  expect_contains(msg, "found 2");
}

TEST(IdxMalformed, TruncatedHeader) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("truncated_header.idx")); });
  expect_contains(msg, "expected 12 bytes of sizes");
  expect_contains(msg, "found 8");
}

TEST(IdxMalformed, TruncatedPayloadNamesSizes) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("truncated.idx")); });
  expect_contains(msg, "truncated.idx");
  expect_contains(msg, "truncated payload");
  expect_contains(msg, "expected 24 bytes");
  expect_contains(msg, "found 20");
}

TEST(IdxMalformed, TrailingBytes) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("trailing.idx")); });
  expect_contains(msg, "trailing data");
  expect_contains(msg, "expected 24 bytes");
  expect_contains(msg, "found 27");
  // Inside a gzip stream, the count is only known after inflating everything.
  msg = io_error_of([] { data::read_idx(idx_file("trailing.idx.gz")); });
  expect_contains(msg, "trailing data");
  expect_contains(msg, "found 27");
}

TEST(IdxMalformed, HugeDimsOverflow) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("huge_overflow.idx")); });
  expect_contains(msg, "overflow");
  expect_contains(msg, "(4294967295, 4294967295, 4294967295)");
  msg = io_error_of([] { data::read_idx(idx_file("huge_f64_overflow.idx")); });
  expect_contains(msg, "overflow a 64-bit byte count");
}

TEST(IdxMalformed, HugeDimsAreRejectedBeforeAllocating) {
  // 2^31 * 16 float32 = 128 GiB claimed by a 16-byte file: no allocation may be attempted.
  std::string msg = io_error_of([] { data::read_idx(idx_file("huge_alloc.idx")); });
  expect_contains(msg, "expected 137438953408 bytes");
  expect_contains(msg, "found 4");
  msg = io_error_of([] { data::read_idx(idx_file("huge_alloc.idx.gz")); });
  expect_contains(msg, "truncated payload");
  expect_contains(msg, "at most");
}

TEST(IdxMalformed, TruncatedGzip) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("truncated.idx.gz")); });
  expect_contains(msg, "truncated.idx.gz");
  expect_contains(msg, "truncated gzip");
}

TEST(IdxMalformed, GzipCrcMismatch) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("bad_crc.idx.gz")); });
  expect_contains(msg, "corrupt gzip");
}

TEST(IdxMalformed, GarbageAfterGzipStream) {
  std::string msg = io_error_of([] { data::read_idx(idx_file("garbage_after.idx.gz")); });
  expect_contains(msg, "garbage after the gzip data");
}

TEST(IdxMalformed, EveryTruncationOfAGoodFileFails) {
  // Cut a good file (raw and gzip) at every length: each prefix must be an IOError, never a
  // crash or a tensor.
  for (const char* name : {"u8_2x3x4.idx", "u8_2x3x4.idx.gz"}) {
    auto bytes = file_bytes(idx_file(name));
    for (size_t n = 0; n < bytes.size(); ++n)
      EXPECT_THROW(data::parse_idx(bytes.data(), n, name), IOError) << name << " cut at " << n;
  }
}

TEST(IdxMalformed, ZeroSizeDoesNotHideAnOverflowingExtent) {
  // 0 x (2^32-1)^3 has no elements, but the strides of such a tensor overflow int64.
  auto bytes = idx_header(0x08, {0, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu});
  std::string msg = io_error_of([&] { data::parse_idx(bytes.data(), bytes.size(), "mem"); });
  expect_contains(msg, "(0, 4294967295, 4294967295, 4294967295) overflow a 64-bit element count");
  msg = io_error_of([&] {
    auto gz = gzip_stored(bytes);
    data::parse_idx(gz.data(), gz.size(), "mem.gz");
  });
  expect_contains(msg, "overflow a 64-bit element count");
  // (2^32-1) x 0 x (2^31-1) still fits: an empty tensor.
  bytes = idx_header(0x08, {0xFFFFFFFFu, 0, 0x7FFFFFFFu});
  Tensor t = data::parse_idx(bytes.data(), bytes.size(), "mem");
  EXPECT_EQ(t.shape(), (Shape{0xFFFFFFFFll, 0, 0x7FFFFFFFll}));
  EXPECT_EQ(t.numel(), 0);
}

TEST(IdxRead, HandMadeStoredGzipEqualsRaw) {
  // Checks the test's gzip writer against the reader, across several stored blocks.
  std::vector<uint8_t> raw = idx_header(0x08, {2, 100000});
  for (int i = 0; i < 200000; ++i) raw.push_back(static_cast<uint8_t>(i * 31 + (i >> 9)));
  const auto gz = gzip_stored(raw);
  Tensor a = data::parse_idx(raw.data(), raw.size(), "raw");
  Tensor b = data::parse_idx(gz.data(), gz.size(), "gz");
  ASSERT_EQ(b.shape(), (Shape{2, 100000}));
  EXPECT_EQ(a.to_vector<int>(), b.to_vector<int>());
}

TEST(IdxMalformed, GzipClaimingMoreThanItHoldsAllocatesOnlyWhatArrives) {
  // 64 KiB of payload in a stored gzip stream, under a header claiming 50 MB: within what
  // 64 KiB of deflate data could expand to, so only reading finds the shortfall. No tensor may
  // be allocated before the data are there.
  std::vector<uint8_t> raw = idx_header(0x08, {50'000'000});
  raw.resize(raw.size() + 65536, 0x5A);
  const auto gz = gzip_stored(raw);
  cpu_allocator().reset_peak_stats();
  const int64_t before = cpu_allocator().stats().allocated_bytes;
  std::string msg = io_error_of([&] { data::parse_idx(gz.data(), gz.size(), "claims.gz"); });
  expect_contains(msg, "truncated payload: expected 50000000 bytes");
  expect_contains(msg, "found 65536");
  EXPECT_LT(cpu_allocator().stats().peak_allocated_bytes - before, int64_t{1} << 20);
}
