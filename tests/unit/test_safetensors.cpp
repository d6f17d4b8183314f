// safetensors reader and writer: round trips, byte-exact headers written out by hand, interop
// with files made by the Python reference implementation (tests/reference/
// make_safetensors_reference.py), checksums, memory-mapping and I/O errors. Malformed files:
// test_safetensors_malformed.cpp.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "safetensors_test_util.hpp"
#include "../../src/io/crc32c.hpp"  // private; exported for these tests

namespace fs = std::filesystem;
using namespace ember;
using ember::io::Metadata;
using ember::io::TensorMap;
using namespace ember::test::st;

namespace {

// Mappings of `path` in this process, from /proc/self/maps: [begin, end) ranges.
std::vector<std::pair<uintptr_t, uintptr_t>> mappings_of(const fs::path& path) {
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  std::ifstream maps("/proc/self/maps");
  const std::string target = fs::weakly_canonical(path).string();
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos || line.substr(slash) != target) continue;
    std::istringstream ls(line);
    uintptr_t b = 0, e = 0;
    char dash;
    ls >> std::hex >> b >> dash >> e;
    out.emplace_back(b, e);
  }
  return out;
}

bool in_mapping(const void* p, const std::vector<std::pair<uintptr_t, uintptr_t>>& maps) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  for (auto [b, e] : maps)
    if (a >= b && a < e) return true;
  return false;
}

class Safetensors : public TempDirTest {
 protected:
  Safetensors() : TempDirTest("ember_safetensors_") {}
};

// ------------------------------------------------------------------ fixtures shared with Python

// The tensors of tests/data/safetensors_from_ember.safetensors; mirrored by ember_expected() in
// make_safetensors_reference.py, which checks the file with the reference implementation.
TensorMap make_ember_tensors() {
  TensorMap m;
  m["a_u8"] = tensor<uint8_t>({7, 0, 255});
  m["b_f32"] = tensor<float>({1.5f, -2.0f, 0.0f, 3.0f}, {2, 2});
  m["c_f64"] = tensor<double>({-0.125}).view({});
  m["d_f16"] = tensor<Half>({Half(1.0f), Half(-0.5f), Half(2048.0f)});
  m["e_bf16"] = tensor<BFloat16>({BFloat16::from_bits(0x3F80), BFloat16::from_bits(0xC2F7)});
  m["f_i32"] = tensor<int32_t>({-5, 2147483647});
  m["g_i64"] = tensor<int64_t>({-9000000000LL});
  m["h_bool"] = tensor<bool>({true, false, false, true});
  m["i_empty"] = empty({0, 3});
  m["j_view"] = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1);
  return m;
}
Metadata make_ember_metadata() { return {{"framework", "ember"}, {"note", "quote \" backslash \\ tab \t \xC3\xA9"}}; }

void check_ember_tensors(const TensorMap& m) {
  ASSERT_EQ(m.size(), 10u);
  EXPECT_EQ(m.at("a_u8").dtype(), kUInt8);
  EXPECT_EQ(m.at("a_u8").to_vector<int64_t>(), (std::vector<int64_t>{7, 0, 255}));
  EXPECT_EQ(m.at("b_f32").shape(), (Shape{2, 2}));
  EXPECT_EQ(m.at("b_f32").to_vector<float>(), (std::vector<float>{1.5f, -2.0f, 0.0f, 3.0f}));
  EXPECT_EQ(m.at("c_f64").dtype(), kFloat64);
  EXPECT_EQ(m.at("c_f64").dim(), 0);
  EXPECT_EQ(m.at("c_f64").to_vector<double>(), (std::vector<double>{-0.125}));
  EXPECT_EQ(m.at("d_f16").to_vector<float>(), (std::vector<float>{1.0f, -0.5f, 2048.0f}));
  EXPECT_EQ(m.at("e_bf16").dtype(), kBFloat16);
  EXPECT_EQ(m.at("e_bf16").to_vector<float>(), (std::vector<float>{1.0f, -123.5f}));
  EXPECT_EQ(m.at("f_i32").to_vector<int64_t>(), (std::vector<int64_t>{-5, 2147483647}));
  EXPECT_EQ(m.at("g_i64").to_vector<int64_t>(), (std::vector<int64_t>{-9000000000LL}));
  EXPECT_EQ(m.at("h_bool").dtype(), kBool);
  EXPECT_EQ(m.at("h_bool").to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 1}));
  EXPECT_EQ(m.at("i_empty").shape(), (Shape{0, 3}));
  EXPECT_EQ(m.at("j_view").shape(), (Shape{3, 2}));
  EXPECT_EQ(m.at("j_view").to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  for (const auto& [name, t] : m) {
    EXPECT_TRUE(t.is_cpu()) << name;
    EXPECT_TRUE(t.is_contiguous()) << name;
    // The file puts 3 bytes of U8 first, so later tensors sit misaligned in it: the reader must
    // copy those rather than create misaligned typed tensors.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % t.element_size(), 0u) << name;
  }
}

// Values from reference_tensors() in make_safetensors_reference.py.
void check_python_tensors(const TensorMap& m) {
  ASSERT_EQ(m.size(), 10u);
  const Tensor& f32 = m.at("f32");
  EXPECT_EQ(f32.dtype(), kFloat32);
  EXPECT_EQ(f32.shape(), (Shape{2, 3}));
  EXPECT_EQ(f32.to_vector<float>(), (std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));
  EXPECT_EQ(m.at("f64").dtype(), kFloat64);
  EXPECT_EQ(m.at("f64").to_vector<double>(), (std::vector<double>{0.1, -2.5e300, 5e-324}));
  const Tensor& f16 = m.at("f16");
  ASSERT_EQ(f16.dtype(), kFloat16);
  ASSERT_EQ(f16.shape(), (Shape{6}));
  const uint16_t f16_bits[] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00};  // 1 -2 .5 65504 2^-24 inf
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f16.data<Half>()[i].bits, f16_bits[i]) << i;
  const Tensor& bf16 = m.at("bf16");
  ASSERT_EQ(bf16.dtype(), kBFloat16);
  ASSERT_EQ(bf16.shape(), (Shape{2, 2}));
  const uint16_t bf16_bits[] = {0x3F80, 0xC040, 0x3E80, 0x7F80};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(bf16.data<BFloat16>()[i].bits, bf16_bits[i]) << i;
  EXPECT_EQ(m.at("i32").dtype(), kInt32);
  EXPECT_EQ(m.at("i32").shape(), (Shape{1, 3}));
  EXPECT_EQ(m.at("i32").to_vector<int64_t>(), (std::vector<int64_t>{-2147483648LL, 0, 2147483647}));
  EXPECT_EQ(m.at("i64").dtype(), kInt64);
  EXPECT_EQ(m.at("i64").to_vector<int64_t>(),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 1, std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(m.at("u8").dtype(), kUInt8);
  EXPECT_EQ(m.at("u8").to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 127, 255}));
  EXPECT_EQ(m.at("bool").dtype(), kBool);
  EXPECT_EQ(m.at("bool").to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(m.at("scalar").dim(), 0);
  EXPECT_EQ(m.at("scalar").to_vector<float>(), (std::vector<float>{3.25f}));
  EXPECT_EQ(m.at("empty").dtype(), kFloat32);
  EXPECT_EQ(m.at("empty").shape(), (Shape{0, 3}));
}

const Metadata kPythonMetadata = {{"format", "np"}, {"source", "make_safetensors_reference.py"}};

// ------------------------------------------------------------------ round trips

TEST_F(Safetensors, RoundTripEveryDtypeThroughBytesAndFiles) {
  const TensorMap m = make_ember_tensors();
  const Bytes b = io::serialize_safetensors(m);
  check_ember_tensors(io::deserialize_safetensors(b.data(), b.size()));
  io::save_safetensors(path("m.safetensors"), m);
  check_ember_tensors(io::load_safetensors(path("m.safetensors")));
  check_ember_tensors(io::load_safetensors(path("m.safetensors"), nullptr, {.mmap = false}));
}

TEST_F(Safetensors, RoundTripPreservesSpecialFloatBits) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float denorm = std::numeric_limits<float>::denorm_min();
  TensorMap m{{"x", tensor<float>({nan, inf, -inf, -0.0f, denorm})}};
  const Bytes b = io::serialize_safetensors(m);
  TensorMap r = io::deserialize_safetensors(b.data(), b.size());
  const float* p = r.at("x").data<float>();
  const float want[] = {nan, inf, -inf, -0.0f, denorm};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(std::memcmp(&p[i], &want[i], 4), 0) << i;
}

TEST_F(Safetensors, RoundTripZeroDimAndEmptyTensors) {
  TensorMap m{{"scalar", tensor<int64_t>({-3}).view({})},
              {"empty", empty({0, 3}, {.dtype = kFloat64})},
              {"empty1d", empty({0}, {.dtype = kBool})},
              {"after", tensor<float>({2.5f})}};
  const Bytes b = io::serialize_safetensors(m);
  TensorMap r = io::deserialize_safetensors(b.data(), b.size());
  EXPECT_EQ(r.at("scalar").shape(), Shape{});
  EXPECT_EQ(r.at("scalar").to_vector<int64_t>(), (std::vector<int64_t>{-3}));
  EXPECT_EQ(r.at("empty").shape(), (Shape{0, 3}));
  EXPECT_EQ(r.at("empty").dtype(), kFloat64);
  EXPECT_EQ(r.at("empty1d").shape(), (Shape{0}));
  EXPECT_EQ(r.at("after").to_vector<float>(), (std::vector<float>{2.5f}));
}

TEST_F(Safetensors, NonContiguousViewsAreWrittenInLogicalOrder) {
  Tensor base = tensor<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  TensorMap m{{"t", base.transpose(0, 1)},                  // (4, 3)
              {"s", base.slice(1, 1, 4, 2)},                // columns 1 and 3
              {"e", tensor<float>({5, 6}).expand({3, 2})},  // stride 0
              {"r", base.select(0, 2)}};                    // offset view
  const Bytes b = io::serialize_safetensors(m);
  TensorMap r = io::deserialize_safetensors(b.data(), b.size());
  EXPECT_EQ(r.at("t").to_vector<float>(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(r.at("s").shape(), (Shape{3, 2}));
  EXPECT_EQ(r.at("s").to_vector<float>(), (std::vector<float>{1, 3, 5, 7, 9, 11}));
  EXPECT_EQ(r.at("e").to_vector<float>(), (std::vector<float>{5, 6, 5, 6, 5, 6}));
  EXPECT_EQ(r.at("r").to_vector<float>(), (std::vector<float>{8, 9, 10, 11}));
  // The source is untouched and still a view.
  EXPECT_FALSE(m.at("t").is_contiguous());
  EXPECT_TRUE(m.at("t").shares_storage(base));
}

TEST_F(Safetensors, TensorsRequiringGradAreSavedWithoutTheGraph) {
  Tensor w = tensor<float>({1, 2, 3}).requires_grad_();
  const Bytes b = io::serialize_safetensors({{"w", w}});
  TensorMap r = io::deserialize_safetensors(b.data(), b.size());
  EXPECT_FALSE(r.at("w").requires_grad());
  EXPECT_EQ(r.at("w").to_vector<float>(), (std::vector<float>{1, 2, 3}));
}

TEST_F(Safetensors, CudaTensorsAreSavedFromTheHost) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  TensorMap m{{"x", x.to(Device::cuda())}, {"xt", x.to(Device::cuda()).transpose(0, 1)}};
  const Bytes b = io::serialize_safetensors(m);
  TensorMap r = io::deserialize_safetensors(b.data(), b.size());
  EXPECT_TRUE(r.at("x").is_cpu());
  EXPECT_EQ(r.at("x").to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.at("xt").to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST_F(Safetensors, MetadataRoundTripsWithEscapes) {
  const Metadata md = {{"plain", "value"},
                       {"escapes", "\"quoted\" back\\slash \n\r\t\b\f \x01\x1f \x7f"},
                       {"unicode", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"},
                       {"", "empty key"}};
  const Bytes b = io::serialize_safetensors({{"x", tensor<float>({1})}}, md);
  Metadata got;
  io::deserialize_safetensors(b.data(), b.size(), &got);
  EXPECT_EQ(got, md);
  // Loading clears what the map held; a file without metadata gives an empty map.
  const Bytes plain = io::serialize_safetensors({{"x", tensor<float>({1})}});
  io::deserialize_safetensors(plain.data(), plain.size(), &got);
  EXPECT_TRUE(got.empty());
  io::save_safetensors(path("md.safetensors"), {}, md);
  io::load_safetensors(path("md.safetensors"), &got);
  EXPECT_EQ(got, md);
}

TEST_F(Safetensors, DeserializeCopiesTheBuffer) {
  Bytes b = io::serialize_safetensors({{"x", tensor<int32_t>({1, 2})}});
  TensorMap r = io::deserialize_safetensors(b.data(), b.size());
  std::fill(b.end() - 8, b.end(), uint8_t{0xAB});
  EXPECT_EQ(r.at("x").to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
}

// ------------------------------------------------------------------ exact bytes, written by hand

TEST_F(Safetensors, HeaderBytesOfASmallFileAreExact) {
  // Inserted out of order: the header and the data follow name order.
  TensorMap m;
  m["b"] = tensor<float>({1.0f, -2.0f});
  m["a"] = tensor<uint8_t>({7}).view({});
  const std::string json = R"({"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  ASSERT_EQ(json.size(), 105u);  // padded with 7 spaces to 112 = 0x70
  const std::string prefix("\x70\0\0\0\0\0\0\0", 8);
  const std::string data("\x07\x00\x00\x80\x3F\x00\x00\x00\xC0", 9);  // 7, 1.0f, -2.0f (little-endian)
  const std::string all = prefix + json + std::string(7, ' ') + data;
  const Bytes want(all.begin(), all.end());
  EXPECT_EQ(io::serialize_safetensors(m), want);
  io::save_safetensors(path("small.safetensors"), m);
  EXPECT_EQ(read_bytes(path("small.safetensors")), want);
}

TEST_F(Safetensors, BytesMatchThePythonImplementation) {
  // safetensors 0.8.0: serialize({"x": bf16 [1.0, -3.0]}, metadata={"k": "v"}) returned exactly
  // these bytes (header of 80 bytes, already a multiple of 8: no padding).
  const std::string json = R"({"__metadata__":{"k":"v"},"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})";
  const std::string all = std::string("\x50\0\0\0\0\0\0\0", 8) + json + "\x80\x3F\x40\xC0";
  const Bytes want(all.begin(), all.end());
  const TensorMap m{{"x", tensor<BFloat16>({BFloat16(1.0f), BFloat16(-3.0f)})}};
  EXPECT_EQ(io::serialize_safetensors(m, {{"k", "v"}}), want);
}

TEST_F(Safetensors, EmptyMapIsAPaddedEmptyObject) {
  const Bytes want = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  EXPECT_EQ(io::serialize_safetensors({}), want);
  EXPECT_TRUE(io::deserialize_safetensors(want.data(), want.size()).empty());
}

// ------------------------------------------------------------------ interop with Python

TEST_F(Safetensors, LoadsFileWrittenByPythonSafetensors) {
  const fs::path p = data_dir() / "safetensors_from_python.safetensors";
  ASSERT_TRUE(fs::exists(p)) << p;
  for (bool mmap : {true, false}) {
    SCOPED_TRACE(mmap ? "mmap" : "read");
    Metadata md;
    TensorMap m = io::load_safetensors(p.string(), &md, {.mmap = mmap});
    check_python_tensors(m);
    EXPECT_EQ(md, kPythonMetadata);
  }
  const Bytes b = read_bytes(p);
  Metadata md;
  check_python_tensors(io::deserialize_safetensors(b.data(), b.size(), &md));
  EXPECT_EQ(md, kPythonMetadata);
}

TEST_F(Safetensors, EmberFileIsStableAndReadable) {
  const fs::path p = data_dir() / "safetensors_from_ember.safetensors";
  const Bytes written = io::serialize_safetensors(make_ember_tensors(), make_ember_metadata());
  if (std::getenv("EMBER_REGENERATE_TEST_DATA")) write_bytes(p, written);
  // The committed file was checked with the Python reference reader
  // (make_safetensors_reference.py --check); Ember must keep writing exactly those bytes.
  ASSERT_TRUE(fs::exists(p)) << p;
  EXPECT_EQ(read_bytes(p), written);
  Metadata md;
  check_ember_tensors(io::load_safetensors(p.string(), &md));
  EXPECT_EQ(md, make_ember_metadata());
}

// ------------------------------------------------------------------ memory mapping

TEST_F(Safetensors, MmapTensorsAliasThePrivateMapping) {
  fs::copy_file(data_dir() / "safetensors_from_python.safetensors", path("p.safetensors"));
  const Bytes before = read_bytes(path("p.safetensors"));
  Tensor view;
  {
    TensorMap m = io::load_safetensors(path("p.safetensors"));
    const auto maps = mappings_of(path("p.safetensors"));
    ASSERT_FALSE(maps.empty()) << "the file is not mapped";
    // The python writer aligns every tensor: all non-empty ones alias the mapping.
    for (const auto& [name, t] : m)
      if (t.numel() > 0) EXPECT_TRUE(in_mapping(t.data_ptr(), maps)) << name;
    // Writes are copy-on-write: visible through the tensor, never in the file.
    m.at("f32").data<float>()[0] = 42.0f;
    EXPECT_EQ(m.at("f32").to_vector<float>()[0], 42.0f);
    view = m.at("i64").slice(0, 1, 3);
  }
  // A view alone keeps the mapping alive.
  EXPECT_FALSE(mappings_of(path("p.safetensors")).empty());
  EXPECT_EQ(view.to_vector<int64_t>(), (std::vector<int64_t>{1, std::numeric_limits<int64_t>::max()}));
  view = Tensor();
  EXPECT_TRUE(mappings_of(path("p.safetensors")).empty()) << "the mapping outlived every tensor";
  EXPECT_EQ(read_bytes(path("p.safetensors")), before);
}

TEST_F(Safetensors, ReadModeCopiesAndClosesTheFile) {
  fs::copy_file(data_dir() / "safetensors_from_python.safetensors", path("p.safetensors"));
  TensorMap m = io::load_safetensors(path("p.safetensors"), nullptr, {.mmap = false});
  EXPECT_TRUE(mappings_of(path("p.safetensors")).empty());
  check_python_tensors(m);
}

TEST_F(Safetensors, SavingOverAMappedFileKeepsOldTensorsValid) {
  const std::string p = path("w.safetensors");
  io::save_safetensors(p, {{"x", tensor<double>({1, 2, 3, 4})}});
  TensorMap old = io::load_safetensors(p);
  // save replaces the file by rename: the mapped inode stays intact for `old`.
  io::save_safetensors(p, {{"x", tensor<double>({9})}});
  EXPECT_EQ(old.at("x").to_vector<double>(), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(io::load_safetensors(p).at("x").to_vector<double>(), (std::vector<double>{9}));
  EXPECT_EQ(listing(), (std::vector<std::string>{"w.safetensors"}));
}

TEST_F(Safetensors, AcceptsSpacePaddingAndZeroSizeTensorsAtBoundaries) {
  // Zero-size tensors before, between and after the others, sharing offsets; header padded.
  const std::string h = "{" + entry("z0", "F32", "[0]", 0, 0) + "," + entry("a", "U8", "[2]", 0, 2) + "," +
                        entry("z1", "I64", "[0,5]", 2, 2) + "," + entry("b", "U8", "[1]", 2, 3) + "," +
                        entry("z2", "BOOL", "[0]", 3, 3) + "}" + std::string(9, ' ');
  const Bytes b = make_file(h, {1, 2, 3});
  TensorMap m = io::deserialize_safetensors(b.data(), b.size());
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m.at("a").to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(m.at("b").to_vector<int64_t>(), (std::vector<int64_t>{3}));
  EXPECT_EQ(m.at("z1").shape(), (Shape{0, 5}));
}

TEST_F(Safetensors, AcceptsWhitespaceInsideJsonAndEscapedNames) {
  const std::string h = "{ \"a\\u0000b\" : {\n\"dtype\" :\t\"U8\", \"shape\": [ 1 ], \"data_offsets\": [0, 1] } }  ";
  const Bytes b = make_file(h, {9});
  TensorMap m = io::deserialize_safetensors(b.data(), b.size());
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m.begin()->first, std::string("a\0b", 3));
}

TEST_F(Safetensors, NullBufferIsRejected) {
  expect_io_error([] { io::deserialize_safetensors(nullptr, 0); }, "shorter than the 8-byte");
  expect_io_error([] { io::deserialize_safetensors(nullptr, 16); }, "null data pointer");
}

// ------------------------------------------------------------------ CRC-32C and checksums

// Bit-at-a-time CRC-32C straight from the definition: the independent truth for both fast paths.
uint32_t crc32c_bitwise(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
  }
  return ~c;
}

TEST(Crc32c, KnownAnswers) {
  // "123456789" is the catalogue check value; the 32-byte vectors are from RFC 3720, B.4.
  const std::string check = "123456789";
  Bytes zeros(32, 0), ones(32, 0xFF), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i), dec[i] = static_cast<uint8_t>(31 - i);
  using Fn = uint32_t (*)(const void*, size_t, uint32_t);
  std::vector<std::pair<const char*, Fn>> impls = {{"dispatch", io::detail::crc32c},
                                                   {"portable", io::detail::crc32c_portable}};
  if (io::detail::crc32c_have_sse42()) impls.push_back({"sse42", io::detail::crc32c_sse42});
  for (const auto& [name, f] : impls) {
    EXPECT_EQ(f(check.data(), check.size(), 0), 0xE3069283u) << name;
    EXPECT_EQ(f(nullptr, 0, 0), 0u) << name;
    EXPECT_EQ(f(zeros.data(), 32, 0), 0x8A9136AAu) << name;
    EXPECT_EQ(f(ones.data(), 32, 0), 0x62A8AB43u) << name;
    EXPECT_EQ(f(inc.data(), 32, 0), 0x46DD794Eu) << name;
    EXPECT_EQ(f(dec.data(), 32, 0), 0x113FDB5Cu) << name;
  }
}

TEST(Crc32c, FastPathsMatchTheDefinitionAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  Bytes buf(600);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 8; ++start) {
    for (size_t n = 0; start + n <= 300; ++n) {
      const uint32_t want = crc32c_bitwise(buf.data() + start, n);
      ASSERT_EQ(io::detail::crc32c_portable(buf.data() + start, n), want) << start << " " << n;
      if (io::detail::crc32c_have_sse42())
        ASSERT_EQ(io::detail::crc32c_sse42(buf.data() + start, n), want) << start << " " << n;
      ASSERT_EQ(io::detail::crc32c(buf.data() + start, n), want) << start << " " << n;
    }
  }
  // Continuation: the CRC of a ++ b from the CRC of a.
  for (size_t cut : {0, 1, 7, 8, 13, 599, 600}) {
    const uint32_t a = io::detail::crc32c(buf.data(), cut);
    EXPECT_EQ(io::detail::crc32c(buf.data() + cut, buf.size() - cut, a), crc32c_bitwise(buf.data(), buf.size()));
    EXPECT_EQ(io::detail::crc32c_portable(buf.data() + cut, buf.size() - cut, a),
              crc32c_bitwise(buf.data(), buf.size()));
  }
}

TEST_F(Safetensors, ChecksumsAreStoredAsMetadata) {
  const std::string digits = "123456789";
  const TensorMap m{{"digits", tensor<uint8_t>(std::vector<uint8_t>(digits.begin(), digits.end()))},
                    {"empty", empty({0})},
                    {"w", tensor<float>({1, 2, 3, 4}, {2, 2}).transpose(0, 1)}};
  const Bytes b = io::serialize_safetensors(m, {{"user", "kept"}}, {.checksums = true});
  Metadata md;
  const TensorMap back = io::deserialize_safetensors(b.data(), b.size(), &md);
  ASSERT_EQ(md.size(), 4u);
  EXPECT_EQ(md.at("user"), "kept");
  EXPECT_EQ(md.at("crc32c.digits"), "e3069283");
  EXPECT_EQ(md.at("crc32c.empty"), "00000000");
  // The transposed view is stored contiguous, as 1 3 2 4: the checksum covers the bytes as stored.
  const std::vector<float> stored = {1, 3, 2, 4};
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", crc32c_bitwise(reinterpret_cast<const uint8_t*>(stored.data()), 16));
  EXPECT_EQ(md.at("crc32c.w"), hex);
  EXPECT_EQ(back.at("w").to_vector<float>(), stored);
  // save_safetensors writes the same bytes, and every load path verifies them.
  const std::string p = path("c.safetensors");
  io::save_safetensors(p, m, {{"user", "kept"}}, {.checksums = true});
  EXPECT_EQ(read_bytes(p), b);
  for (bool mmap : {true, false}) {
    Metadata md2;
    EXPECT_EQ(io::load_safetensors(p, &md2, {.mmap = mmap}).size(), 3u);
    EXPECT_EQ(md2, md);
  }
  // Without the option nothing is added.
  Metadata plain;
  const Bytes nb = io::serialize_safetensors(m, {{"user", "kept"}});
  io::deserialize_safetensors(nb.data(), nb.size(), &plain);
  EXPECT_EQ(plain, (Metadata{{"user", "kept"}}));
}

// The reason checksums exist: a flipped bit in the data area is a perfectly valid file.
TEST_F(Safetensors, FlippedDataBitFailsTheLoadOnlyWithChecksums) {
  const TensorMap m{{"a", tensor<float>({1, 2, 3})}, {"b", tensor<int64_t>({4, 5})}, {"c", tensor<bool>({true})}};
  const std::vector<int64_t> good = {4, 5};
  std::vector<int64_t> bad = good;
  reinterpret_cast<uint8_t*>(bad.data())[1] ^= 0x08;  // 4 + 2048
  auto hex = [](uint32_t v) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", v);
    return std::string(buf);
  };
  const std::string stored = hex(crc32c_bitwise(reinterpret_cast<const uint8_t*>(good.data()), 16));
  const std::string computed = hex(crc32c_bitwise(reinterpret_cast<const uint8_t*>(bad.data()), 16));
  for (bool checksums : {true, false}) {
    SCOPED_TRACE(checksums ? "with checksums" : "without checksums");
    Bytes b = io::serialize_safetensors(m, {}, {.checksums = checksums});
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
    // Tensor b is second in name order: bytes [12, 28) of the data area; flip bit 3 of its 2nd byte.
    b[8 + n + 12 + 1] ^= 0x08;
    const std::string p = path("flipped.safetensors");
    write_bytes(p, b);
    if (checksums) {
      for (const std::string& rule : {std::string("tensor \"b\": checksum mismatch"), "stored crc32c " + stored,
                                      "computed " + computed}) {
        expect_io_error([&] { io::deserialize_safetensors(b.data(), b.size()); }, rule);
        expect_io_error([&] { io::load_safetensors(p); }, rule, p);
        expect_io_error([&] { io::load_safetensors(p, nullptr, {.mmap = false}); }, rule, p);
      }
    } else {
      for (bool mmap : {true, false}) {
        const TensorMap back = io::load_safetensors(p, nullptr, {.mmap = mmap});
        EXPECT_EQ(back.at("b").to_vector<int64_t>(), bad);  // silently wrong
      }
      EXPECT_EQ(io::deserialize_safetensors(b.data(), b.size()).at("b").to_vector<int64_t>(), bad);
    }
  }
}

TEST_F(Safetensors, EveryDataBitFlipIsCaughtByTheChecksums) {
  const TensorMap m = make_ember_tensors();
  const Bytes good = io::serialize_safetensors(m, make_ember_metadata(), {.checksums = true});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | good[i];
  ASSERT_GT(good.size(), 8 + n);
  for (size_t at = 8 + n; at < good.size(); ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes b = good;
      b[at] ^= static_cast<uint8_t>(1u << bit);
      EXPECT_THROW(io::deserialize_safetensors(b.data(), b.size()), IOError) << "byte " << at << " bit " << bit;
    }
  }
}

TEST_F(Safetensors, BadChecksumEntriesAreIOErrors) {
  const Bytes d(4, 0);  // crc32c of four zero bytes: 48674bc7
  struct Case {
    std::string value_or_key;
    bool is_key;
    const char* rule;
  };
  const std::vector<Case> cases = {
      {"48674BC7", false, "malformed checksum \"48674BC7\""},  // upper case is not the format
      {"48674bc", false, "malformed checksum"},
      {"048674bc7", false, "malformed checksum"},
      {"0x48674b", false, "malformed checksum"},
      {"", false, "malformed checksum"},
      {"48674bc8", false, "checksum mismatch: stored crc32c 48674bc8, computed 48674bc7"},
      {"crc32c.b", true, "checksum for tensor \"b\", which the file does not have"},
      {"crc32c.", true, "checksum for tensor \"\""},
      {"crc32c.A", true, "which the file does not have"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value_or_key);
    const std::string key = c.is_key ? c.value_or_key : "crc32c.a";
    const std::string value = c.is_key ? "48674bc7" : c.value_or_key;
    const std::string h = "{\"__metadata__\":{\"" + key + "\":\"" + value + "\"}," + entry("a", "F32", "[1]", 0, 4) + "}";
    const Bytes b = make_file(h, d);
    expect_io_error([&] { io::deserialize_safetensors(b.data(), b.size()); }, c.rule);
    const std::string p = path("bad.safetensors");
    write_bytes(p, b);
    for (bool mmap : {true, false}) expect_io_error([&] { io::load_safetensors(p, nullptr, {.mmap = mmap}); }, c.rule, p);
  }
  // The correct value loads.
  const Bytes ok = make_file("{\"__metadata__\":{\"crc32c.a\":\"48674bc7\"}," + entry("a", "F32", "[1]", 0, 4) + "}", d);
  EXPECT_EQ(io::deserialize_safetensors(ok.data(), ok.size()).size(), 1u);
}

TEST_F(Safetensors, ChecksumKeysAreReservedWhenChecksumsAreOn) {
  const TensorMap m{{"x", tensor<float>({1})}};
  try {
    io::serialize_safetensors(m, {{"crc32c.x", "00000000"}}, {.checksums = true});
    ADD_FAILURE() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("\"crc32c.x\" starts with \"crc32c.\", which is reserved"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(io::save_safetensors(path("x.safetensors"), m, {{"crc32c.", ""}}, {.checksums = true}),
               ValueError);
  EXPECT_TRUE(listing().empty());
  // With checksums off the key is the caller's; the loader still verifies what it says.
  const Bytes wrong = io::serialize_safetensors(m, {{"crc32c.x", "00000000"}});
  expect_io_error([&] { io::deserialize_safetensors(wrong.data(), wrong.size()); }, "checksum mismatch");
  const Bytes right = io::serialize_safetensors(m, {{"crc32c.x", "0x"}, {"crc32c_other", "y"}});
  expect_io_error([&] { io::deserialize_safetensors(right.data(), right.size()); }, "malformed checksum");
  const Bytes unrelated = io::serialize_safetensors(m, {{"crc32c_other", "y"}, {"crc32", "z"}}, {.checksums = true});
  Metadata md;
  io::deserialize_safetensors(unrelated.data(), unrelated.size(), &md);
  EXPECT_EQ(md.size(), 3u);
}

// ------------------------------------------------------------------ I/O and argument errors

TEST_F(Safetensors, MissingFileIsAnIOErrorWithPathAndReason) {
  const std::string p = path("missing.safetensors");
  for (bool mmap : {true, false})
    expect_io_error([&] { io::load_safetensors(p, nullptr, {.mmap = mmap}); }, p, "No such file or directory");
}

TEST_F(Safetensors, DirectoryIsNotAFile) {
  const std::string p = dir_.string();
  for (bool mmap : {true, false})
    expect_io_error([&] { io::load_safetensors(p, nullptr, {.mmap = mmap}); }, p, "Is a directory");
  // A FIFO is refused without blocking on the open.
  const std::string fifo = path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_io_error([&] { io::load_safetensors(fifo); }, fifo, "not a regular file");
}

TEST_F(Safetensors, UnwritableDestinationsAreIOErrors) {
  const TensorMap m{{"x", tensor<float>({1})}};
  const std::string no_dir = path("no/such/dir/x.safetensors");
  expect_io_error([&] { io::save_safetensors(no_dir, m); }, no_dir, "No such file or directory");
  write_bytes(path("plain"), {1});
  const std::string under_file = path("plain/x.safetensors");
  expect_io_error([&] { io::save_safetensors(under_file, m); }, under_file, "Not a directory");
  fs::create_directory(path("a_dir"));
  const std::string onto_dir = path("a_dir");
  expect_io_error([&] { io::save_safetensors(onto_dir, m); }, onto_dir, "Is a directory");
  // Failed saves leave no temporary files behind.
  EXPECT_EQ(listing(), (std::vector<std::string>{"a_dir", "plain"}));
}

TEST_F(Safetensors, SaveReplacesAnExistingFile) {
  const std::string p = path("x.safetensors");
  write_bytes(p, Bytes(1000, 0xEE));
  io::save_safetensors(p, {{"x", tensor<int64_t>({5})}});
  EXPECT_EQ(io::load_safetensors(p).at("x").to_vector<int64_t>(), (std::vector<int64_t>{5}));
  EXPECT_EQ(listing(), (std::vector<std::string>{"x.safetensors"}));
}

TEST_F(Safetensors, BadArgumentsAreValueErrors) {
  const Tensor x = tensor<float>({1});
  EXPECT_THROW(io::serialize_safetensors({{"__metadata__", x}}), ValueError);
  EXPECT_THROW(io::serialize_safetensors({{"x", Tensor()}}), ValueError);
  EXPECT_THROW(io::serialize_safetensors({{"bad\xFFname", x}}), ValueError);
  EXPECT_THROW(io::serialize_safetensors({{"x", x}}, {{"k", "\xC0\xAF"}}), ValueError);
  EXPECT_THROW(io::serialize_safetensors({{"x", x}}, {{"\xFF", "v"}}), ValueError);
  EXPECT_THROW(io::save_safetensors(path("x.safetensors"), {{"__metadata__", x}}), ValueError);
  // The reader accepts at most 64 dimensions, so the writer refuses to make a file it would reject.
  try {
    io::serialize_safetensors({{"deep", empty(Shape(65, 1))}});
    ADD_FAILURE() << "no ValueError for 65 dimensions";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("\"deep\" has 65 dimensions; safetensors files hold at most 64"),
              std::string::npos)
        << e.what();
  }
  const Bytes b64 = io::serialize_safetensors({{"deep", empty(Shape(64, 1))}});
  EXPECT_EQ(io::deserialize_safetensors(b64.data(), b64.size()).at("deep").dim(), 64);
  EXPECT_TRUE(listing().empty()) << "a rejected save created a file";
}

}  // namespace
