// ProgressBar. On a terminal the line is redrawn in place (\r, padded with spaces over the
// previous line's leftovers) at most every min_redraw_seconds; in a log it prints a plain line
// per every_percent of progress (or every_seconds), so the log stays short and greppable.
#include "ember/util/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "ember/core/error.hpp"

namespace ember::util {
namespace {

std::string format_number(double v) {
  char buf[48];
  const double a = std::fabs(v);
  if (!std::isfinite(v))
    std::snprintf(buf, sizeof(buf), "%g", v);
  else if (a != 0.0 && (a < 1e-3 || a >= 1e5))
    std::snprintf(buf, sizeof(buf), "%.3e", v);
  else
    std::snprintf(buf, sizeof(buf), "%.4f", v);
  return buf;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof(buf), "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

ProgressBar::ProgressBar(int64_t total, std::string label, ProgressOptions options)
    : total_(total), label_(std::move(label)), options_(std::move(options)) {
  EMBER_CHECK(total_ >= 0, ValueError, "ProgressBar: total must be >= 0, got ", total_);
  EMBER_CHECK(options_.every_percent > 0, ValueError, "ProgressBar: every_percent must be > 0, got ",
              options_.every_percent);
  EMBER_CHECK(options_.bar_width >= 1, ValueError, "ProgressBar: bar_width must be >= 1, got ", options_.bar_width);
  out_ = options_.out ? options_.out : &std::cout;
  terminal_ = options_.terminal.value_or(out_ == &std::cout && isatty(STDOUT_FILENO) == 1);
  start_ = now();
}

ProgressBar::~ProgressBar() {
  try {
    if (open_line_) *out_ << '\n' << std::flush;
  } catch (...) {
  }
}

double ProgressBar::now() const {
  if (options_.clock) return options_.clock();
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string ProgressBar::format_line(int64_t step, const Metrics& metrics, double elapsed) const {
  const double frac = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 1.0;
  const int pct = static_cast<int>(std::floor(frac * 100.0 + 1e-9));
  const std::string total_str = std::to_string(total_);
  std::string step_str = std::to_string(step);
  if (step_str.size() < total_str.size()) step_str.insert(0, total_str.size() - step_str.size(), ' ');

  std::string line = label_;
  if (!line.empty()) line += ' ';
  if (terminal_) {
    const int w = options_.bar_width;
    const int filled = static_cast<int>(frac * w);
    std::string bar(static_cast<size_t>(w), ' ');
    for (int i = 0; i < filled && i < w; ++i) bar[i] = '=';
    if (filled < w && step > 0) bar[filled] = '>';
    line += "[" + bar + "] " + step_str + "/" + total_str + " ";
    char p[8];
    std::snprintf(p, sizeof(p), "%3d%%", pct);
    line += p;
  } else {
    char p[16];
    std::snprintf(p, sizeof(p), " (%3d%%)", pct);
    line += step_str + "/" + total_str + p;
  }

  char rate[64];
  if (step > 0 && elapsed > 0) {
    std::snprintf(rate, sizeof(rate), " %.1f %s/s", static_cast<double>(step) * options_.items_per_step / elapsed,
                  options_.unit.c_str());
  } else {
    std::snprintf(rate, sizeof(rate), " - %s/s", options_.unit.c_str());
  }
  line += rate;
  if (step >= total_) {
    line += " done in " + format_duration(elapsed);
  } else {
    const double eta = step > 0 ? elapsed * static_cast<double>(total_ - step) / static_cast<double>(step) : -1.0;
    line += " ETA " + format_duration(eta);
  }
  for (const auto& [name, value] : metrics) line += " " + name + " " + format_number(value);
  return line;
}

void ProgressBar::emit(int64_t step, const Metrics& metrics, bool final) {
  const double t = now();
  std::string line = format_line(step, metrics, t - start_);
  if (terminal_) {
    const size_t width = line.size();
    if (width < last_width_) line.append(last_width_ - width, ' ');
    last_width_ = width;
    *out_ << '\r' << line;
    if (final) {
      *out_ << '\n';
      open_line_ = false;
    } else {
      open_line_ = true;
    }
  } else {
    *out_ << line << '\n';
  }
  out_->flush();
  last_emit_ = t;
}

void ProgressBar::update(int64_t step, const Metrics& metrics) {
  EMBER_CHECK(step >= 0 && step <= total_, ValueError, "ProgressBar::update: step ", step, " is outside [0, ", total_,
              "]");
  if (finished_) return;
  const double t = now();
  if (terminal_) {
    if (step == total_ || t - last_emit_ >= options_.min_redraw_seconds) emit(step, metrics, false);
    return;
  }
  const double pct = total_ > 0 ? 100.0 * static_cast<double>(step) / static_cast<double>(total_) : 100.0;
  const auto bucket = static_cast<int64_t>(std::floor(pct / options_.every_percent + 1e-9));
  const bool by_percent = bucket > last_bucket_;
  const bool by_time =
      options_.every_seconds > 0 && t - last_emit_ >= options_.every_seconds && t - start_ >= options_.every_seconds;
  if (step > 0 && (by_percent || by_time)) {
    last_bucket_ = std::max(last_bucket_, bucket);
    emit(step, metrics, false);
    end_printed_ = step == total_;
  }
}

void ProgressBar::finish(const Metrics& metrics) { finish_at(total_, metrics); }

void ProgressBar::finish_at(int64_t step, const Metrics& metrics) {
  EMBER_CHECK(step >= 0 && step <= total_, ValueError, "ProgressBar::finish_at: step ", step, " is outside [0, ",
              total_, "]");
  if (finished_) return;
  finished_ = true;
  // In a log, the last update may already have printed the end; repeat it only with news.
  if (terminal_ || !end_printed_ || step != total_ || !metrics.empty()) emit(step, metrics, true);
}

}  // namespace ember::util
