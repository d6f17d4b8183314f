// ProgressBar (with a fake clock, so every line is known exactly), MetricsCSV and SVG plots.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/util/metrics.hpp"
#include "ember/util/plot.hpp"
#include "ember/util/progress.hpp"

namespace fs = std::filesystem;
using namespace ember;
using util::ProgressBar;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string temp_path(const std::string& name) { return (fs::path(::testing::TempDir()) / name).string(); }

size_t count_of(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

}  // namespace

// ------------------------------------------------------------------ progress bar
TEST(ProgressBar, PlainLinesEveryPercent) {
  std::ostringstream out;
  double t = 0;
  ProgressBar bar(
      10, "epoch 1/3",
      {.out = &out, .terminal = false, .every_percent = 25, .items_per_step = 32, .unit = "img", .clock = [&] {
         return t;
       }});
  EXPECT_FALSE(bar.terminal());
  for (int step = 1; step <= 10; ++step) {
    t = 0.5 * step;
    bar.update(step, {{"loss", 1.0 / step}});
  }
  bar.finish();
  // 25% marks are crossed at steps 3 (30%), 5, 8 and 10; rate 64 img/s; ETA 2.5 s rounds to 0:03.
  EXPECT_EQ(out.str(),
            "epoch 1/3  3/10 ( 30%) 64.0 img/s ETA 0:04 loss 0.3333\n"
            "epoch 1/3  5/10 ( 50%) 64.0 img/s ETA 0:03 loss 0.2000\n"
            "epoch 1/3  8/10 ( 80%) 64.0 img/s ETA 0:01 loss 0.1250\n"
            "epoch 1/3 10/10 (100%) 64.0 img/s done in 0:05 loss 0.1000\n");
}

TEST(ProgressBar, PlainLinesEverySeconds) {
  std::ostringstream out;
  double t = 0;
  ProgressBar bar(
      10, "", {.out = &out, .terminal = false, .every_percent = 100, .every_seconds = 10, .clock = [&] { return t; }});
  for (int step = 1; step <= 10; ++step) {
    t = 4.0 * step;
    bar.update(step);
  }
  bar.finish({{"acc", 0.875}});  // new information: printed again
  EXPECT_EQ(out.str(),
            " 3/10 ( 30%) 0.2 it/s ETA 0:28\n"
            " 6/10 ( 60%) 0.2 it/s ETA 0:16\n"
            " 9/10 ( 90%) 0.2 it/s ETA 0:04\n"
            "10/10 (100%) 0.2 it/s done in 0:40\n"
            "10/10 (100%) 0.2 it/s done in 0:40 acc 0.8750\n");
}

TEST(ProgressBar, TerminalRedrawsOneLine) {
  std::ostringstream out;
  double t = 0;
  ProgressBar bar(4, "train", {.out = &out, .terminal = true, .bar_width = 8, .clock = [&] { return t; }});
  t = 1;
  bar.update(2, {{"loss", 2.5}});
  t = 1.05;  // within min_redraw_seconds: skipped
  bar.update(3);
  t = 2;
  bar.finish();
  EXPECT_EQ(out.str(),
            "\rtrain [====>   ] 2/4  50% 2.0 it/s ETA 0:01 loss 2.5000"
            "\rtrain [========] 4/4 100% 2.0 it/s done in 0:02        \n");  // padded over the longer line
}

TEST(ProgressBar, StoppedEarlyAndZeroTotal) {
  std::ostringstream out;
  double t = 0;
  {
    ProgressBar bar(5, "x", {.out = &out, .terminal = false, .clock = [&] { return t; }});
    t = 2;
    bar.finish_at(2);
  }
  EXPECT_EQ(out.str(), "x 2/5 ( 40%) 1.0 it/s ETA 0:03\n");
  out.str("");
  {
    ProgressBar bar(0, "empty", {.out = &out, .terminal = false, .clock = [&] { return t; }});
    bar.finish();
  }
  EXPECT_EQ(out.str(), "empty 0/0 (100%) - it/s done in 0:00\n");
  out.str("");
  {
    // A terminal line left open by an abandoned loop is ended by the destructor.
    ProgressBar bar(5, "y", {.out = &out, .terminal = true, .bar_width = 5, .clock = [&] { return t; }});
    bar.update(1);
  }
  ASSERT_FALSE(out.str().empty());
  EXPECT_EQ(out.str().back(), '\n');
}

TEST(ProgressBar, Errors) {
  std::ostringstream out;
  EXPECT_THROW(ProgressBar(-1, "x", {.out = &out}), ValueError);
  EXPECT_THROW(ProgressBar(5, "x", {.out = &out, .every_percent = 0}), ValueError);
  EXPECT_THROW(ProgressBar(5, "x", {.out = &out, .bar_width = 0}), ValueError);
  ProgressBar bar(5, "x", {.out = &out, .terminal = false});
  EXPECT_THROW(bar.update(6), ValueError);
  EXPECT_THROW(bar.update(-1), ValueError);
  EXPECT_THROW(bar.finish_at(7), ValueError);
}

TEST(ProgressBar, FormatDuration) {
  EXPECT_EQ(util::format_duration(0), "0:00");
  EXPECT_EQ(util::format_duration(59.4), "0:59");
  EXPECT_EQ(util::format_duration(61), "1:01");
  EXPECT_EQ(util::format_duration(3725), "1:02:05");
  EXPECT_EQ(util::format_duration(-1), "--:--");
  EXPECT_EQ(util::format_duration(std::numeric_limits<double>::quiet_NaN()), "--:--");
}

// ------------------------------------------------------------------ metrics CSV
TEST(MetricsCSV, WritesHeaderAndFlushedRows) {
  const std::string path = temp_path("ember_metrics.csv");
  util::MetricsCSV csv(path, {"epoch", "step", "loss", "note"});
  EXPECT_EQ(read_file(path), "epoch,step,loss,note\n");  // the header is on disk at once
  csv.write({int64_t{1}, int64_t{100}, 0.25, std::string("a,b \"c\"")});
  EXPECT_EQ(read_file(path), "epoch,step,loss,note\n1,100,0.25,\"a,b \"\"c\"\"\"\n");  // flushed
  csv.write_named({{"loss", 0.1 + 0.2}, {"epoch", int64_t{2}}});
  csv.write(
      {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity(), 1e-300, std::string("")});
  EXPECT_EQ(read_file(path),
            "epoch,step,loss,note\n1,100,0.25,\"a,b \"\"c\"\"\"\n2,,0.30000000000000004,\nnan,-inf,1e-300,\n");
  // Numbers read back exactly.
  double back = 0;
  const std::string cell = util::csv_cell(0.1 + 0.2);
  std::from_chars(cell.data(), cell.data() + cell.size(), back);
  EXPECT_EQ(back, 0.1 + 0.2);
}

TEST(MetricsCSV, AppendContinuesAMatchingFile) {
  const std::string path = temp_path("ember_metrics_append.csv");
  {
    util::MetricsCSV csv(path, {"step", "loss"});
    csv.write({int64_t{1}, 0.5});
  }
  {
    util::MetricsCSV csv(path, {"step", "loss"}, /*append=*/true);
    csv.write({int64_t{2}, 0.25});
  }
  EXPECT_EQ(read_file(path), "step,loss\n1,0.5\n2,0.25\n");
  EXPECT_THROW(util::MetricsCSV(path, {"step", "acc"}, true), IOError);
  {
    util::MetricsCSV csv(path, {"step", "acc"});  // no append: a fresh file
  }
  EXPECT_EQ(read_file(path), "step,acc\n");
  // A row cut off by a crash does not swallow the next one.
  std::ofstream(path, std::ios::app) << "3,0.1";
  {
    util::MetricsCSV csv(path, {"step", "acc"}, true);
    csv.write({int64_t{4}, 0.2});
  }
  EXPECT_EQ(read_file(path), "step,acc\n3,0.1\n4,0.2\n");
}

TEST(MetricsCSV, Errors) {
  const std::string path = temp_path("ember_metrics_err.csv");
  EXPECT_THROW(util::MetricsCSV(path, {}), ValueError);
  EXPECT_THROW(util::MetricsCSV(path, {"a", "b", "a"}), ValueError);
  EXPECT_THROW(util::MetricsCSV("/nonexistent-dir/m.csv", {"a"}), IOError);
  util::MetricsCSV csv(path, {"a", "b"});
  EXPECT_THROW(csv.write({1.0}), ValueError);
  EXPECT_THROW(csv.write_named({{"c", 1.0}}), ValueError);
}

// ------------------------------------------------------------------ SVG plot
namespace {

// Tags balance (every opened element is closed in order) and there is one root <svg>.
bool well_formed(const std::string& s) {
  std::vector<std::string> stack;
  int roots = 0;
  for (size_t p = s.find('<'); p != std::string::npos; p = s.find('<', p + 1)) {
    const size_t e = s.find('>', p);
    if (e == std::string::npos) return false;
    std::string tag = s.substr(p + 1, e - p - 1);
    if (tag.empty()) return false;
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return false;
      stack.pop_back();
      continue;
    }
    if (stack.empty()) ++roots;
    if (tag.back() == '/') continue;
    stack.push_back(tag.substr(0, tag.find(' ')));
  }
  return stack.empty() && roots == 1;
}

// The coordinates of each polyline's points attribute.
std::vector<std::vector<std::pair<double, double>>> polylines(const std::string& s) {
  std::vector<std::vector<std::pair<double, double>>> out;
  for (size_t p = s.find("<polyline"); p != std::string::npos; p = s.find("<polyline", p + 1)) {
    const size_t a = s.find("points=\"", p) + 8;
    const std::string pts = s.substr(a, s.find('"', a) - a);
    std::vector<std::pair<double, double>> v;
    std::istringstream in(pts);
    std::string pair;
    while (in >> pair) {
      const size_t c = pair.find(',');
      v.emplace_back(std::stod(pair.substr(0, c)), std::stod(pair.substr(c + 1)));
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace

TEST(SvgPlot, WellFormedWithOnePolylinePerSeries) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<util::Series> series = {{"train loss", {}, {2.3, 1.1, 0.7, 0.55, 0.48}},
                                      {"test loss", {0, 1, 2, 3, 4}, {2.2, 1.2, nan, 0.6, 0.57}},
                                      {"test acc", {0.5, 4.5}, {0.1, 0.8}}};
  const std::string svg = util::svg_plot("Loss & accuracy <FMNIST>", series, {.x_label = "epoch", .y_label = "loss"});
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_TRUE(well_formed(svg)) << svg;
  EXPECT_EQ(count_of(svg, "<polyline"), 3u);
  EXPECT_NE(svg.find("Loss &amp; accuracy &lt;FMNIST&gt;"), std::string::npos);
  for (const char* text : {">train loss<", ">test loss<", ">test acc<", ">epoch<", ">loss<"})
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].size(), 5u);
  EXPECT_EQ(lines[1].size(), 4u);  // the NaN is skipped
  EXPECT_EQ(lines[2].size(), 2u);
  for (const auto& line : lines)
    for (auto [x, y] : line) {
      ASSERT_TRUE(std::isfinite(x) && std::isfinite(y));
      EXPECT_TRUE(x >= 0 && x <= 720 && y >= 0 && y <= 440) << x << "," << y;
    }
  // Larger y is drawn higher (smaller SVG y); x increases to the right.
  EXPECT_LT(lines[0][0].second, lines[0][4].second);
  EXPECT_LT(lines[0][0].first, lines[0][4].first);
  // Ticks with labels: 0 and 4 on x (the x range is 0..4.5 → nice ticks 0, 0.5, ..., 5 or 0..5).
  EXPECT_GE(count_of(svg, "text-anchor=\"middle\">"), 5u);
}

TEST(SvgPlot, LogAxisAndDegenerateData) {
  std::string svg = util::svg_plot("lr", {{"lr", {}, {1.0, 0.1, 0.01, -1.0, 0.0}}}, {.log_y = true});
  EXPECT_TRUE(well_formed(svg));
  auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].size(), 3u);  // non-positive values cannot be drawn on a log axis
  EXPECT_NE(svg.find(">0.01<"), std::string::npos);
  // A constant series and an empty one still give a valid picture.
  svg = util::svg_plot("flat", {{"c", {}, {3, 3, 3}}, {"none", {}, {}}});
  EXPECT_TRUE(well_formed(svg));
  lines = polylines(svg);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].size(), 3u);
  EXPECT_EQ(lines[1].size(), 0u);
  for (auto [x, y] : lines[0]) EXPECT_TRUE(std::isfinite(x) && std::isfinite(y));
}

TEST(SvgPlot, WriteAndErrors) {
  const std::string path = temp_path("ember_plot.svg");
  util::write_svg_plot(path, "t", {{"a", {}, {1, 2}}});
  EXPECT_EQ(read_file(path), util::svg_plot("t", {{"a", {}, {1, 2}}}));
  EXPECT_THROW(util::svg_plot("t", {}), ValueError);
  EXPECT_THROW(util::svg_plot("t", {{"a", {1, 2, 3}, {1, 2}}}), ValueError);
  EXPECT_THROW(util::svg_plot("t", {{"a", {}, {1}}}, {.width = 100}), ValueError);
  EXPECT_THROW(util::write_svg_plot("/nonexistent-dir/p.svg", "t", {{"a", {}, {1}}}), IOError);
}
