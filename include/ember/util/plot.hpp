// Line plots as standalone SVG files, drawn by Ember itself (no plotting library): axes with
// "nice" ticks and labels, one polyline per series, a legend. Enough for loss and accuracy curves.
#pragma once

#include <string>
#include <vector>

#include "ember/core/macros.hpp"

namespace ember::util {

/// One curve. Points with a non-finite x or y are skipped. When x is empty, y is drawn
/// against 0, 1, 2, ...
struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

struct PlotOptions {
  std::string x_label;
  std::string y_label;
  int width = 720;
  int height = 440;
  /// Logarithmic y axis (only positive values are drawn).
  bool log_y = false;
};

/// The SVG document text. Throws ValueError for no series, a series whose x and y lengths
/// differ, or a size below 200×150.
EMBER_API std::string svg_plot(const std::string& title, const std::vector<Series>& series,
                               const PlotOptions& options = {});

/// Writes svg_plot(...) to `path` (IOError when it cannot be written).
EMBER_API void write_svg_plot(const std::string& path, const std::string& title, const std::vector<Series>& series,
                              const PlotOptions& options = {});

}  // namespace ember::util
