// Training metrics as CSV: one header line, then one row per record, flushed after each row so a
// crashed or running job's file is always readable (and plottable).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ember/core/macros.hpp"

namespace ember::util {

/// A CSV cell: numbers are written exactly (shortest text that reads back the same value),
/// text is quoted when it holds a comma, quote or newline.
using CsvValue = std::variant<double, int64_t, std::string>;

class EMBER_API MetricsCSV {
 public:
  /// Opens `path` and writes the header. With append = true an existing file whose header
  /// equals `columns` is continued (resumed runs); a different header is an IOError. Throws
  /// ValueError for no columns or a repeated name, IOError when the file cannot be written.
  MetricsCSV(const std::string& path, std::vector<std::string> columns, bool append = false);

  /// Appends a row with one value per column, in column order. Throws ValueError on a count mismatch.
  void write(const std::vector<CsvValue>& row);
  /// Appends a row by name; columns not named are left empty. Throws ValueError for an unknown name.
  void write_named(const std::vector<std::pair<std::string, CsvValue>>& values);

  const std::vector<std::string>& columns() const { return columns_; }
  const std::string& path() const { return path_; }

 private:
  void write_cells(const std::vector<const CsvValue*>& cells);

  std::string path_;
  std::vector<std::string> columns_;
  std::ofstream file_;
};

/// The text of a CSV cell (what MetricsCSV writes).
EMBER_API std::string csv_cell(const CsvValue& v);

}  // namespace ember::util
