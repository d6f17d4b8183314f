// MetricsCSV: a header, then rows flushed one by one. Doubles are written with to_chars'
// shortest round-trip form, so a value read back from the CSV is the value that was logged.
#include "ember/util/metrics.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>

#include "ember/core/error.hpp"

namespace ember::util {
namespace {

std::string quote_if_needed(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string header_line(const std::vector<std::string>& columns) {
  std::string h;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) h += ',';
    h += quote_if_needed(columns[i]);
  }
  return h;
}

}  // namespace

std::string csv_cell(const CsvValue& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    if (std::isnan(*d)) return "nan";
    if (std::isinf(*d)) return *d > 0 ? "inf" : "-inf";
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), *d);
    return std::string(buf, res.ptr);
  }
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  return quote_if_needed(std::get<std::string>(v));
}

MetricsCSV::MetricsCSV(const std::string& path, std::vector<std::string> columns, bool append)
    : path_(path), columns_(std::move(columns)) {
  EMBER_CHECK(!columns_.empty(), ValueError, "MetricsCSV: no columns for '", path_, "'");
  std::set<std::string> seen;
  for (const auto& c : columns_)
    EMBER_CHECK(seen.insert(c).second, ValueError, "MetricsCSV: column '", c, "' appears twice");
  const std::string header = header_line(columns_);

  namespace fs = std::filesystem;
  std::error_code ec;
  bool continue_file = false;
  bool needs_newline = false;
  if (append && fs::exists(path_, ec) && fs::file_size(path_, ec) > 0) {
    std::ifstream in(path_, std::ios::binary);
    std::string first;
    std::getline(in, first);
    if (!first.empty() && first.back() == '\r') first.pop_back();
    EMBER_CHECK(first == header, IOError, "MetricsCSV: '", path_, "' has the header \"", first,
                "\" but the columns are \"", header, "\"; write to another file or remove it");
    in.clear();
    in.seekg(-1, std::ios::end);
    char last = '\n';
    in.get(last);
    needs_newline = last != '\n';  // a row cut off by a crash: start a fresh line
    continue_file = true;
  }
  file_.open(path_, continue_file ? std::ios::app : std::ios::trunc);
  EMBER_CHECK(file_.is_open(), IOError, "MetricsCSV: cannot open '", path_, "' for writing");
  if (needs_newline) file_ << '\n';
  if (!continue_file) file_ << header << '\n';
  file_.flush();
  EMBER_CHECK(file_.good(), IOError, "MetricsCSV: error writing '", path_, "'");
}

void MetricsCSV::write_cells(const std::vector<const CsvValue*>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i) line += ',';
    if (cells[i]) line += csv_cell(*cells[i]);
  }
  line += '\n';
  file_ << line;
  file_.flush();
  EMBER_CHECK(file_.good(), IOError, "MetricsCSV: error writing '", path_, "'");
}

void MetricsCSV::write(const std::vector<CsvValue>& row) {
  EMBER_CHECK(row.size() == columns_.size(), ValueError, "MetricsCSV::write: ", row.size(), " values for ",
              columns_.size(), " columns (", header_line(columns_), ")");
  std::vector<const CsvValue*> cells;
  for (const auto& v : row) cells.push_back(&v);
  write_cells(cells);
}

void MetricsCSV::write_named(const std::vector<std::pair<std::string, CsvValue>>& values) {
  std::vector<const CsvValue*> cells(columns_.size(), nullptr);
  for (const auto& [name, value] : values) {
    size_t i = 0;
    while (i < columns_.size() && columns_[i] != name) ++i;
    EMBER_CHECK(i < columns_.size(), ValueError, "MetricsCSV::write_named: no column '", name,
                "' (columns: ", header_line(columns_), ")");
    cells[i] = &value;
  }
  write_cells(cells);
}

}  // namespace ember::util
