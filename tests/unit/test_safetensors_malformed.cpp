// Malformed safetensors files: one generated file per rule of the format (several per rule where
// it has variants), each loaded through deserialize_safetensors and load_safetensors with and
// without mmap; every one must be an IOError whose message names the rule (a fragment checked
// per case, so a file rejected for the wrong reason fails). Then every prefix of valid files,
// and randomly damaged files. (The same inputs are fuzz seeds: fuzz/fuzz_safetensors.cpp.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "safetensors_test_util.hpp"

namespace fs = std::filesystem;
using namespace ember;
using ember::io::Metadata;
using ember::io::TensorMap;
using namespace ember::test::st;

namespace {

class SafetensorsMalformedFiles : public TempDirTest {
 protected:
  SafetensorsMalformedFiles() : TempDirTest("ember_st_malformed_") {}
};

struct Malformed {
  const char* name;
  Bytes bytes;
  const char* rule;  // a phrase the message must contain
};

std::vector<Malformed> malformed_cases() {
  const std::string f32x2 = entry("a", "F32", "[2]", 0, 8);
  const Bytes d8(8, 0);
  std::vector<Malformed> c;
  c.push_back({"Empty", {}, "shorter than the 8-byte"});
  c.push_back({"SevenBytes", {0, 0, 0, 0, 0, 0, 0}, "shorter than the 8-byte"});
  c.push_back({"HeaderOver100MB", make_file("{}", {}, 100'000'001), "exceeds the limit"});
  c.push_back({"HeaderLengthHuge", make_file("{}", {}, std::numeric_limits<int64_t>::max()), "exceeds the limit"});
  c.push_back({"HeaderPastEnd", make_file("{}", {}, 3), "runs past the end"});
  c.push_back({"HeaderLengthZero", make_file(""), "header length 0 is too small"});
  c.push_back({"InvalidUtf8Byte", make_file("{\"\xFF\":{}}"), "not valid UTF-8"});
  c.push_back({"OverlongUtf8", make_file("{\"\xC0\xAF\":{}}"), "not valid UTF-8"});
  c.push_back({"SurrogateUtf8", make_file("{\"\xED\xA0\x80\":{}}"), "not valid UTF-8"});
  c.push_back({"TruncatedUtf8", make_file("{\"\xE2\x82"), "not valid UTF-8"});
  c.push_back({"NotJson", make_file("{\"a\":"), "not valid JSON"});
  c.push_back({"NotJsonBareWord", make_file("{abc}"), "not valid JSON"});
  c.push_back({"ArrayRoot", make_file("[1, 2]"), "not a JSON object"});
  c.push_back({"StringRoot", make_file("\"{}\""), "not a JSON object"});
  c.push_back({"LeadingSpace", make_file(" {}"), "not a JSON object"});
  c.push_back({"TrailingGarbage", make_file("{}x"), "not valid JSON"});
  c.push_back({"TrailingNewline", make_file("{}\n"), "trailing bytes"});
  c.push_back({"TrailingTabThenSpaces", make_file("{}\t  "), "trailing bytes"});
  c.push_back({"TrailingNul", make_file(std::string("{}\0", 3)), "NUL byte"});
  c.push_back({"NulThenGarbage", make_file(std::string("{}\0\"x\"}", 7)), "NUL byte"});
  c.push_back({"TwoObjects", make_file("{} {}"), "not valid JSON"});
  c.push_back({"DuplicateTensor", make_file("{" + f32x2 + "," + entry("a", "F32", "[2]", 8, 16) + "}", Bytes(16, 0)),
               "duplicate key \"a\""});
  c.push_back({"DuplicateField",
               make_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8),
               "duplicate key \"dtype\""});
  c.push_back({"DuplicateViaEscape",
               make_file("{" + f32x2 + "," + entry("\\u0061", "F32", "[2]", 8, 16) + "}", Bytes(16, 0)),
               "duplicate key \"a\""});
  c.push_back({"DuplicateMetadataKey", make_file(R"({"__metadata__":{"k":"1","k":"2"}})"), "duplicate key \"k\""});
  c.push_back({"TooDeep", make_file(R"({"a":{"dtype":[[1]]}})"), "nests deeper"});
  c.push_back({"EntryNotObject", make_file(R"({"a":5})"), "entry must be a JSON object"});
  c.push_back(
      {"MissingDtype", make_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", d8), "missing field \"dtype\""});
  c.push_back(
      {"MissingShape", make_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", d8), "missing field \"shape\""});
  c.push_back(
      {"MissingOffsets", make_file(R"({"a":{"dtype":"F32","shape":[2]}})", d8), "missing field \"data_offsets\""});
  c.push_back({"ExtraField", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", d8),
               "unexpected field \"x\""});
  c.push_back({"DtypeNotString", make_file(R"({"a":{"dtype":1,"shape":[2],"data_offsets":[0,8]}})", d8),
               "dtype must be a string"});
  c.push_back({"UnknownDtype", make_file("{" + entry("a", "XYZ", "[2]", 0, 8) + "}", d8), "unknown dtype \"XYZ\""});
  c.push_back({"LowercaseDtype", make_file("{" + entry("a", "f32", "[2]", 0, 8) + "}", d8), "unknown dtype"});
  c.push_back({"UnsupportedI8", make_file("{" + entry("a", "I8", "[8]", 0, 8) + "}", d8), "unsupported dtype \"I8\""});
  c.push_back({"UnsupportedF8", make_file("{" + entry("a", "F8_E4M3", "[8]", 0, 8) + "}", d8), "unsupported dtype"});
  c.push_back({"ShapeNotArray", make_file("{" + entry("a", "F32", "2", 0, 8) + "}", d8), "shape must be an array"});
  c.push_back({"ShapeNegative", make_file("{" + entry("a", "F32", "[-2]", 0, 8) + "}", d8), "non-negative integers"});
  c.push_back({"ShapeFloat", make_file("{" + entry("a", "F32", "[2.0]", 0, 8) + "}", d8), "non-negative integers"});
  c.push_back({"ShapeString", make_file("{" + entry("a", "F32", "[\"2\"]", 0, 8) + "}", d8), "non-negative integers"});
  c.push_back({"ShapeBeyondInt64", make_file("{" + entry("a", "U8", "[9223372036854775808]", 0, 8) + "}", d8),
               "non-negative integers"});
  c.push_back({"ShapeCountOverflow", make_file("{" + entry("a", "U8", "[4294967296,4294967296]", 0, 8) + "}", d8),
               "overflows a 64-bit element count"});
  c.push_back({"ShapeOverflowBeforeZero", make_file("{" + entry("a", "U8", "[4294967296,4294967296,0]", 0, 0) + "}"),
               "overflows"});
  c.push_back({"ShapeByteOverflow", make_file("{" + entry("a", "F64", "[4611686018427387904]", 0, 8) + "}", d8),
               "overflows a 64-bit byte count"});
  c.push_back({"OffsetsNotArray", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":8}})", d8),
               "data_offsets must be an array of two"});
  c.push_back({"OffsetsThree", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", d8),
               "data_offsets must be an array of two"});
  c.push_back({"OffsetsNegative", make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[-1,-1]}})"),
               "data_offsets must be non-negative"});
  c.push_back({"OffsetsFloat", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", d8),
               "data_offsets must be non-negative"});
  c.push_back({"OffsetsReversed", make_file("{" + entry("a", "F32", "[0]", 8, 0) + "}", d8), "end before they begin"});
  c.push_back({"SizeMismatch", make_file("{" + entry("a", "F32", "[3]", 0, 8) + "}", d8), "need 12"});
  c.push_back({"GapAtStart", make_file("{" + entry("a", "F32", "[1]", 4, 8) + "}", d8), "gap"});
  c.push_back(
      {"GapBetween",
       make_file("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 8, 12) + "}", Bytes(12, 0)),
       "gap"});
  c.push_back({"Overlap", make_file("{" + f32x2 + "," + entry("b", "F32", "[1]", 4, 8) + "}", d8), "overlapping"});
  c.push_back(
      {"EmptyInsideAnother", make_file("{" + f32x2 + "," + entry("b", "F32", "[0]", 4, 4) + "}", d8), "overlapping"});
  c.push_back({"ExtraDataAtEnd", make_file("{" + f32x2 + "}", Bytes(9, 0)), "to the end of the file"});
  c.push_back({"DataMissing", make_file("{" + f32x2 + "}", Bytes(4, 0)), "to the end of the file"});
  c.push_back({"DataWithoutTensors", make_file("{}", Bytes(4, 0)), "to the end of the file"});
  c.push_back({"OffsetsHuge",
               make_file("{" + entry("a", "U8", "[0]", 0, 0) + "," +
                         entry("b", "U8", "[1]", 18446744073709551615ull - 1, 18446744073709551615ull) + "}"),
               "gap"});
  c.push_back({"MetadataNotObject", make_file(R"({"__metadata__":"x"})"), "\"__metadata__\" must be an object"});
  c.push_back({"MetadataValueNotString", make_file(R"({"__metadata__":{"k":1}})"), "must be a string"});
  c.push_back({"MetadataNested", make_file(R"({"__metadata__":{"k":{}}})"), "must be a string"});
  c.push_back({"BoolByteTwo", make_file("{" + entry("a", "BOOL", "[2]", 0, 2) + "}", {1, 2}), "BOOL element 1"});

  // Added with the standalone suite: more variants per rule.
  const std::string meta_ok = R"("__metadata__":{"k":"v"})";
  c.push_back({"HeaderLengthOne", make_file("{"), "header length 1 is too small"});
  c.push_back({"HeaderLengthOneOfMany", make_file("{}", Bytes(8, ' '), 1), "header length 1 is too small"});
  c.push_back({"HeaderPastEndByOne", make_file("{} ", {}, 4), "8 + 4 > file size 11"});
  c.push_back({"FourBytes", {2, 0, 0, 0}, "file is 4 bytes"});
  c.push_back({"NumberRoot", make_file("12"), "not a JSON object"});
  c.push_back({"NullRoot", make_file("null"), "not a JSON object"});
  c.push_back({"TrueRoot", make_file("true"), "not a JSON object"});
  c.push_back({"ObjectThenArray", make_file("{}[]"), "not valid JSON"});
  c.push_back({"TrailingComma", make_file("{" + f32x2 + ",}", d8), "not valid JSON"});
  c.push_back({"Comment", make_file("{/* x */}"), "not valid JSON"});
  c.push_back({"SingleQuotes", make_file("{'a':1}"), "not valid JSON"});
  c.push_back({"RawControlCharInString", make_file("{\"a\nb\":{}}"), "not valid JSON"});
  c.push_back({"LoneSurrogateEscape", make_file(R"({"\ud800":{}})"), "not valid JSON"});
  c.push_back({"BadEscape", make_file(R"({"\x41":{}})"), "not valid JSON"});
  c.push_back({"UnterminatedString", make_file("{\"abc"), "not valid JSON"});
  c.push_back({"CodePointAbove10FFFF", make_file("{\"\xF4\x90\x80\x80\":{}}"), "not valid UTF-8"});
  c.push_back({"ContinuationByteAlone", make_file("{\"\x80\":{}}"), "not valid UTF-8"});
  c.push_back({"Utf8InPadding", make_file("{}  \xFF"), "not valid UTF-8"});
  c.push_back({"DuplicateMetadataSection", make_file("{" + meta_ok + "," + meta_ok + "}"),
               "duplicate key \"__metadata__\""});
  c.push_back({"DuplicateOffsetsField",
               make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"data_offsets":[0,8]}})", d8),
               "duplicate key \"data_offsets\""});
  c.push_back({"DuplicateAfterOtherEntries",
               make_file("{" + f32x2 + "," + entry("b", "U8", "[0]", 8, 8) + "," + entry("a", "U8", "[0]", 8, 8) + "}", d8),
               "duplicate key \"a\""});
  c.push_back({"DuplicateMetadataKeyViaEscape", make_file(R"({"__metadata__":{"k":"1","\u006b":"2"}})"),
               "duplicate key \"k\""});
  c.push_back({"EntryArray", make_file(R"({"a":[1]})"), "entry must be a JSON object"});
  c.push_back({"EntryNull", make_file(R"({"a":null})"), "entry must be a JSON object"});
  c.push_back({"DtypeNull", make_file(R"({"a":{"dtype":null,"shape":[2],"data_offsets":[0,8]}})", d8),
               "dtype must be a string"});
  c.push_back({"DtypeEmpty", make_file("{" + entry("a", "", "[2]", 0, 8) + "}", d8), "unknown dtype \"\""});
  c.push_back({"DtypeWithSpace", make_file("{" + entry("a", "F32 ", "[2]", 0, 8) + "}", d8), "unknown dtype"});
  c.push_back({"ShapeObject", make_file("{" + entry("a", "F32", "{}", 0, 8) + "}", d8), "shape must be an array"});
  c.push_back({"ShapeNull", make_file("{" + entry("a", "F32", "null", 0, 8) + "}", d8), "shape must be an array"});
  c.push_back({"ShapeBool", make_file("{" + entry("a", "F32", "[true]", 0, 8) + "}", d8), "non-negative integers"});
  c.push_back({"ShapeExponent", make_file("{" + entry("a", "F32", "[2e0]", 0, 8) + "}", d8), "non-negative integers"});
  c.push_back({"ShapeBeyondUint64", make_file("{" + entry("a", "F32", "[18446744073709551616]", 0, 8) + "}", d8),
               "non-negative integers"});
  c.push_back({"ShapeNested", make_file("{" + entry("a", "F32", "[[2]]", 0, 8) + "}", d8), "nests deeper"});
  c.push_back({"ShapeTooManyDims",
               make_file("{" + entry("a", "U8", "[" + [] {
                           std::string s = "1";
                           for (int i = 0; i < 64; ++i) s += ",1";
                           return s;
                         }() + "]", 0, 1) + "}", {0}),
               "more than 64 elements"});
  c.push_back({"ShapeByteOverflowF32", make_file("{" + entry("a", "F32", "[2305843009213693952,2]", 0, 8) + "}", d8),
               "overflows a 64-bit byte count"});
  c.push_back({"ShapeElementOverflowThreeDims",
               make_file("{" + entry("a", "U8", "[4294967296,4294967296,1]", 0, 8) + "}", d8), "element count"});
  c.push_back({"OffsetsOne", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", d8),
               "data_offsets must be an array of two"});
  c.push_back({"OffsetsEmpty", make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[]}})"),
               "data_offsets must be an array of two"});
  c.push_back({"OffsetsStrings", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", d8),
               "data_offsets must be non-negative"});
  c.push_back({"OffsetsBeyondUint64",
               make_file(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,18446744073709551616]}})"),
               "data_offsets must be non-negative"});
  c.push_back({"OffsetsReversedNonEmpty", make_file("{" + entry("a", "U8", "[4]", 8, 4) + "}", d8),
               "[8, 4] end before they begin"});
  c.push_back({"OffsetsPastEnd", make_file("{" + entry("a", "F32", "[4]", 0, 16) + "}", d8),
               "cover 16 bytes of data but the file has 8"});
  c.push_back({"NotStartingAtZero",
               make_file("{" + entry("a", "F32", "[1]", 4, 8) + "," + entry("b", "F32", "[1]", 8, 12) + "}", d8),
               "starts at data byte 4 leaving a gap after byte 0"});
  c.push_back({"SameRangeTwice",
               make_file("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 0, 8) + "}", d8),
               "overlapping"});
  c.push_back({"ShortOfEndByOne", make_file("{" + entry("a", "U8", "[7]", 0, 7) + "}", d8),
               "cover 7 bytes of data but the file has 8"});
  c.push_back({"MetadataArray", make_file(R"({"__metadata__":["k","v"]})"), "\"__metadata__\" must be an object"});
  c.push_back({"MetadataNull", make_file(R"({"__metadata__":null})"), "\"__metadata__\" must be an object"});
  c.push_back({"MetadataValueNull", make_file(R"({"__metadata__":{"k":null}})"), "must be a string, found null"});
  c.push_back({"MetadataValueBool", make_file(R"({"__metadata__":{"k":true}})"), "must be a string, found boolean"});
  c.push_back({"MetadataValueArray", make_file(R"({"__metadata__":{"k":["v"]}})"), "must be a string, found array"});
  c.push_back({"BoolByteFF", make_file("{" + entry("a", "BOOL", "[3]", 0, 3) + "}", {0, 1, 0xFF}),
               "BOOL element 2 has byte value 255"});
  c.push_back({"ChecksumMismatch",
               make_file("{\"__metadata__\":{\"crc32c.a\":\"00000000\"}," + f32x2 + "}", d8), "checksum mismatch"});
  c.push_back({"ChecksumUppercase",
               make_file("{\"__metadata__\":{\"crc32c.a\":\"8A9136AA\"}," + f32x2 + "}", d8), "malformed checksum"});
  c.push_back({"ChecksumForMissingTensor",
               make_file("{\"__metadata__\":{\"crc32c.b\":\"8a9136aa\"}," + f32x2 + "}", d8),
               "checksum for tensor \"b\", which the file does not have"});
  return c;
}

// Valid multi-tensor files with metadata (and checksums): every dtype, a scalar, an empty
// tensor and misaligned data.
Bytes valid_file(bool checksums) {
  TensorMap m;
  m["a_u8"] = tensor<uint8_t>({7, 0, 255});
  m["b_f32"] = tensor<float>({1.5f, -2.0f, 0.0f, 3.0f}, {2, 2});
  m["c_f64"] = tensor<double>({-0.125}).view({});
  m["d_f16"] = tensor<Half>({Half(1.0f), Half(-0.5f)});
  m["e_bf16"] = tensor<BFloat16>({BFloat16::from_bits(0x3F80)});
  m["f_i32"] = tensor<int32_t>({-5, 2147483647});
  m["g_i64"] = tensor<int64_t>({-9000000000LL});
  m["h_bool"] = tensor<bool>({true, false, true});
  m["i_empty"] = empty({0, 3});
  return io::serialize_safetensors(m, {{"framework", "ember"}, {"note", "x"}}, {.checksums = checksums});
}

}  // namespace

class SafetensorsMalformed : public SafetensorsMalformedFiles, public ::testing::WithParamInterface<Malformed> {};

TEST_P(SafetensorsMalformed, IsRejectedNamingTheRule) {
  const Malformed& m = GetParam();
  expect_io_error([&] { io::deserialize_safetensors(m.bytes.data(), m.bytes.size()); }, m.rule,
                  "deserialize_safetensors: buffer of " + std::to_string(m.bytes.size()) + " bytes");
  const std::string p = path("bad.safetensors");
  write_bytes(p, m.bytes);
  expect_io_error([&] { io::load_safetensors(p); }, m.rule, "load_safetensors: '" + p + "'");
  expect_io_error([&] { io::load_safetensors(p, nullptr, {.mmap = false}); }, m.rule, "load_safetensors: '" + p + "'");
}

INSTANTIATE_TEST_SUITE_P(Rules, SafetensorsMalformed, ::testing::ValuesIn(malformed_cases()),
                         [](const ::testing::TestParamInfo<Malformed>& i) { return std::string(i.param.name); });

TEST(SafetensorsMalformedCases, AreManyAndDistinct) {
  const auto cases = malformed_cases();
  EXPECT_GE(cases.size(), 30u);
  std::set<std::string> files;
  for (const auto& c : cases)
    EXPECT_TRUE(files.emplace(c.bytes.begin(), c.bytes.end()).second) << c.name << " duplicates another case";
}

// The bases the malformed cases are edits of are themselves valid, so each case fails for the
// rule it breaks and not for something it shares with its neighbours.
TEST(SafetensorsMalformedCases, UnbrokenVariantsLoad) {
  const std::string f32x2 = entry("a", "F32", "[2]", 0, 8);
  for (const Bytes& b :
       {make_file("{}"), make_file("{" + f32x2 + "}", Bytes(8, 0)), make_file("{}" + std::string(6, ' ')),
        make_file(R"({"__metadata__":{"k":"v"}})"), make_file("{" + entry("a", "BOOL", "[2]", 0, 2) + "}", {1, 0}),
        make_file("{\"__metadata__\":{\"crc32c.a\":\"8c28b28a\"}," + f32x2 + "}", Bytes(8, 0)),
        make_file("{" + entry("a", "U8", "[4294967296,2147483647,0]", 0, 0) + "}"),
        make_file("{" + entry("a", "U8", "[" + [] {
                    std::string s = "1";
                    for (int i = 0; i < 63; ++i) s += ",1";
                    return s;
                  }() + "]", 0, 1) + "}", {0}),
        make_file("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 4, 8) + "}", Bytes(8, 0))}) {
    EXPECT_NO_THROW(io::deserialize_safetensors(b.data(), b.size()))
        << std::string(b.begin() + 8, b.end() - std::min<size_t>(b.size() - 8, 8));
  }
}

TEST_F(SafetensorsMalformedFiles, EveryPrefixOfAValidFileWithMetadataIsRejected) {
  for (bool checksums : {false, true}) {
    const Bytes b = valid_file(checksums);
    Metadata md;
    ASSERT_NO_THROW(io::deserialize_safetensors(b.data(), b.size(), &md));
    ASSERT_EQ(md.size(), checksums ? 11u : 2u);
    const std::string p = path("prefix.safetensors");
    for (size_t len = 0; len < b.size(); ++len) {
      SCOPED_TRACE("checksums " + std::to_string(checksums) + ", prefix of " + std::to_string(len) + " bytes");
      // Through a copy of exactly len bytes, so that ASan sees any read past the end.
      const Bytes prefix(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(len));
      const uint8_t* data = prefix.empty() ? nullptr : prefix.data();
      EXPECT_THROW(io::deserialize_safetensors(data, len), IOError);
      write_bytes(p, prefix);
      EXPECT_THROW(io::load_safetensors(p), IOError);
      EXPECT_THROW(io::load_safetensors(p, nullptr, {.mmap = false}), IOError);
    }
  }
}

TEST_F(SafetensorsMalformedFiles, EveryPrefixOfTheCommittedFilesIsRejected) {
  for (const char* file : {"safetensors_from_python.safetensors", "safetensors_from_ember.safetensors"}) {
    const Bytes b = read_bytes(data_dir() / file);
    ASSERT_GT(b.size(), 100u) << file;
    ASSERT_NO_THROW(io::deserialize_safetensors(b.data(), b.size())) << file;
    for (size_t len = 0; len < b.size(); ++len) {
      const Bytes prefix(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(len));
      EXPECT_THROW(io::deserialize_safetensors(prefix.data(), len), IOError) << file << " prefix " << len;
    }
  }
}

// A cheap, deterministic stand-in for fuzzing: damaged files may load (a flipped data byte
// is still a valid file) or be rejected, but only ever with IOError.
TEST_F(SafetensorsMalformedFiles, RandomlyDamagedFilesLoadOrFailWithIOError) {
  std::mt19937_64 rng(20240601);
  int rejected = 0, loaded = 0;
  for (const Bytes& good : {read_bytes(data_dir() / "safetensors_from_python.safetensors"),
                            read_bytes(data_dir() / "safetensors_from_ember.safetensors"), valid_file(true)}) {
    ASSERT_FALSE(good.empty());
    for (int trial = 0; trial < 2000; ++trial) {
      Bytes b = good;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        const size_t at = rng() % b.size();
        switch (rng() % 3) {
          case 0: b[at] = static_cast<uint8_t>(rng()); break;                                           // overwrite
          case 1: b.erase(b.begin() + static_cast<std::ptrdiff_t>(at)); break;                          // delete
          default: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(rng()));  // insert
        }
      }
      try {
        TensorMap m = io::deserialize_safetensors(b.data(), b.size());
        ++loaded;
        for (const auto& [name, t] : m) EXPECT_EQ(t.nbytes(), static_cast<int64_t>(t.numel() * t.element_size()));
      } catch (const IOError&) {
        ++rejected;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "trial " << trial << ": not an IOError: " << e.what();
      }
    }
  }
  // Both outcomes occur, so the loop exercised the parser and not only the first check.
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(loaded, 10);
}
