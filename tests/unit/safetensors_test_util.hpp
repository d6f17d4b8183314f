// Helpers shared by test_safetensors.cpp and test_safetensors_malformed.cpp: the committed data
// directory, raw file bytes, hand-made safetensors files and IOError expectations (the per-test scratch
// directory is test_util.hpp's TempDirTest).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <ember/ember.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember::test::st {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

/// tests/data, from the source tree or from ctest's working directory (tests/).
inline fs::path data_dir() {
  fs::path p = fs::path(__FILE__).parent_path().parent_path() / "data";
  return fs::exists(p) ? p : fs::path("data");
}

inline Bytes read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot open " << p;
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

inline void write_bytes(const fs::path& p, const Bytes& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(f.good()) << "cannot write " << p;
}

/// A file: 8-byte little-endian length (the header's size unless given), header, data.
inline Bytes make_file(const std::string& header, const Bytes& data = {}, int64_t length = -1) {
  const uint64_t n = length >= 0 ? static_cast<uint64_t>(length) : header.size();
  Bytes b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(n >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

/// A header entry.
inline std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                         uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

/// Expects f() to throw an IOError whose message contains `needle` (and `also`, when given).
template <class F>
void expect_io_error(F&& f, const std::string& needle, const std::string& also = "") {
  std::vector<std::string> needles{needle};
  if (!also.empty()) needles.push_back(also);
  expect_error<IOError>(std::forward<F>(f), needles);
}

using ember::test::TempDirTest;

}  // namespace ember::test::st
