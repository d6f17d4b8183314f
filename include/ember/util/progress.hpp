// A progress bar for training loops: one redrawn line on a terminal, plain periodic lines in
// logs (when stdout is a file or a pipe).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/macros.hpp"

namespace ember::util {

/// Named values shown after the bar: {{"loss", 0.31}, {"acc", 0.88}}.
using Metrics = std::vector<std::pair<std::string, double>>;

struct ProgressOptions {
  /// Where to write; nullptr = std::cout.
  std::ostream* out = nullptr;
  /// Redraw one line with \r (a terminal) or print plain lines. Unset: isatty(1) when writing
  /// to std::cout, plain otherwise.
  std::optional<bool> terminal;
  /// Plain mode: print a line each time progress crosses another multiple of this percentage...
  double every_percent = 10.0;
  /// ...or when this many seconds passed since the last line (0 = only by percentage).
  double every_seconds = 0.0;
  /// Items per step for the rate (e.g. the batch size, to show images/s) and their unit.
  double items_per_step = 1.0;
  std::string unit = "it";
  /// Characters inside the bar's brackets.
  int bar_width = 30;
  /// Terminal mode: the least time between redraws, so a fast loop does not flood the terminal.
  double min_redraw_seconds = 0.1;
  /// Seconds since an arbitrary origin; unset = a steady clock. Tests pass a fake clock.
  std::function<double()> clock;
};

/// Shows progress through `total` steps:
///   terminal: "epoch 3/10 [=========>           ]  150/469  32% 2100.0 img/s ETA 0:04 loss 0.3100"
///   plain:    "epoch 3/10  150/469 ( 32%) 2100.0 img/s ETA 0:04 loss 0.3100"
class EMBER_API ProgressBar {
 public:
  /// Throws ValueError for total < 0, every_percent <= 0 or bar_width < 1.
  ProgressBar(int64_t total, std::string label, ProgressOptions options = {});
  /// Ends the terminal line if finish() was not called (never throws).
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Reports that `step` of `total` steps are done (1-based: step == total is the end), with
  /// the latest metrics. Throws ValueError for step outside [0, total].
  void update(int64_t step, const Metrics& metrics = {});
  /// Prints the final state (step = total unless given) and ends the line.
  void finish(const Metrics& metrics = {});
  /// finish() with the step actually reached (e.g. a loop that was stopped early).
  void finish_at(int64_t step, const Metrics& metrics = {});
  bool terminal() const { return terminal_; }

  /// The text of one line without \r or newline (what update would show), for tests and logs.
  std::string format_line(int64_t step, const Metrics& metrics, double elapsed_seconds) const;

 private:
  double now() const;
  void emit(int64_t step, const Metrics& metrics, bool final);

  int64_t total_;
  std::string label_;
  ProgressOptions options_;
  std::ostream* out_;
  bool terminal_;
  double start_ = 0.0;
  double last_emit_ = -1e300;
  int64_t last_bucket_ = 0;  // plain mode: multiples of every_percent already printed
  size_t last_width_ = 0;    // terminal mode: length of the previous line, to blank leftovers
  bool open_line_ = false;
  bool finished_ = false;
  bool end_printed_ = false;  // plain mode: the line for step == total was printed
};

/// "1:02:03" for at least an hour, "2:03" otherwise; "--:--" for a negative or non-finite value.
EMBER_API std::string format_duration(double seconds);

}  // namespace ember::util
