// SVG line plots. Axis ranges are widened to "nice" tick multiples (1, 2, 5 × 10^k) so the
// ticks land on the frame; the log axis uses decades (and 2, 5 within a decade when the data
// spans less than two).
#include "ember/util/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "ember/core/error.hpp"

namespace ember::util {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

// 1, 2 or 5 times a power of ten, near `raw`.
double nice_step(double raw) {
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / p;
  return (m < 1.5 ? 1.0 : m < 3.5 ? 2.0 : m < 7.5 ? 5.0 : 10.0) * p;
}

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;  // in data units (log10 units on a log axis)
  bool log = false;
};

std::string tick_label(double v, double step, bool log) {
  if (log) {
    const double x = std::pow(10.0, v);
    return fmt(std::fabs(x) >= 1e5 || std::fabs(x) < 1e-3 ? "%.0e" : "%g", x);
  }
  if (std::fabs(v) < step * 1e-9) v = 0.0;  // -0 and rounding noise
  const double mag = std::max(std::fabs(v), step);
  if (mag >= 1e6 || step < 1e-4) return fmt("%.3g", v);
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

Axis linear_axis(double lo, double hi, int target_ticks) {
  if (!(lo <= hi)) lo = 0, hi = 1;  // no data
  if (hi - lo <= std::fabs(hi) * 1e-12) {
    const double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  const double step = nice_step((hi - lo) / target_ticks);
  Axis a;
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  for (double t = a.lo; t <= a.hi + step * 1e-6; t += step) a.ticks.push_back(t);
  return a;
}

Axis log_axis(double lo, double hi) {  // lo, hi > 0
  Axis a;
  a.log = true;
  if (!(lo <= hi) || lo <= 0) lo = 1, hi = 10;
  a.lo = std::floor(std::log10(lo) + 1e-12);
  a.hi = std::ceil(std::log10(hi) - 1e-12);
  if (a.hi <= a.lo) a.hi = a.lo + 1;
  const bool fine = a.hi - a.lo <= 2;
  for (double d = a.lo; d <= a.hi + 1e-9; d += 1) {
    a.ticks.push_back(d);
    if (fine && d < a.hi) {
      a.ticks.push_back(d + std::log10(2.0));
      a.ticks.push_back(d + std::log10(5.0));
    }
  }
  std::sort(a.ticks.begin(), a.ticks.end());
  return a;
}

}  // namespace

std::string svg_plot(const std::string& title, const std::vector<Series>& series, const PlotOptions& opt) {
  EMBER_CHECK(!series.empty(), ValueError, "svg_plot: no series to draw");
  EMBER_CHECK(opt.width >= 200 && opt.height >= 150, ValueError, "svg_plot: the size must be at least 200x150, got ",
              opt.width, "x", opt.height);
  for (const Series& s : series)
    EMBER_CHECK(s.x.empty() || s.x.size() == s.y.size(), ValueError, "svg_plot: series '", s.name, "' has ", s.x.size(),
                " x values but ", s.y.size(), " y values");

  // Points that can be drawn, per series.
  std::vector<std::vector<std::pair<double, double>>> pts(series.size());
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = s.x.empty() ? static_cast<double>(i) : s.x[i];
      const double y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y) || (opt.log_y && y <= 0)) continue;
      pts[k].emplace_back(x, y);
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  }
  const Axis ax = linear_axis(xmin, xmax, 8);
  // 4% headroom on a linear y axis so curves do not run along the frame (accuracy near its max).
  const double ypad = ymin <= ymax ? 0.04 * (ymax - ymin) : 0.0;
  const Axis ay = opt.log_y ? log_axis(ymin, ymax) : linear_axis(ymin - ypad, ymax + ypad, 6);
  const double xstep = ax.ticks.size() > 1 ? ax.ticks[1] - ax.ticks[0] : 1.0;
  const double ystep = ay.ticks.size() > 1 ? ay.ticks[1] - ay.ticks[0] : 1.0;

  const double left = 72, right = 24, top = 44, bottom = 56;
  const double px0 = left, px1 = opt.width - right, py0 = top, py1 = opt.height - bottom;
  auto sx = [&](double x) { return px0 + (x - ax.lo) / (ax.hi - ax.lo) * (px1 - px0); };
  auto sy = [&](double y) {
    const double v = ay.log ? std::log10(y) : y;
    return py1 - (v - ay.lo) / (ay.hi - ay.lo) * (py1 - py0);
  };
  auto syt = [&](double t) { return py1 - (t - ay.lo) / (ay.hi - ay.lo) * (py1 - py0); };  // tick units

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << opt.width << "\" height=\"" << opt.height
    << "\" viewBox=\"0 0 " << opt.width << " " << opt.height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << opt.width << "\" height=\"" << opt.height << "\" fill=\"white\"/>\n";
  o << "<text x=\"" << fmt("%.1f", (px0 + px1) / 2) << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">"
    << xml_escape(title) << "</text>\n";

  // Grid, ticks and their labels.
  o << "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (double t : ax.ticks)
    o << "<line x1=\"" << fmt("%.2f", sx(t)) << "\" y1=\"" << py0 << "\" x2=\"" << fmt("%.2f", sx(t)) << "\" y2=\""
      << py1 << "\"/>\n";
  for (double t : ay.ticks)
    o << "<line x1=\"" << px0 << "\" y1=\"" << fmt("%.2f", syt(t)) << "\" x2=\"" << px1 << "\" y2=\""
      << fmt("%.2f", syt(t)) << "\"/>\n";
  o << "</g>\n";
  o << "<rect x=\"" << px0 << "\" y=\"" << py0 << "\" width=\"" << px1 - px0 << "\" height=\"" << py1 - py0
    << "\" fill=\"none\" stroke=\"black\" stroke-width=\"1\"/>\n";
  o << "<g stroke=\"black\" stroke-width=\"1\">\n";
  for (double t : ax.ticks)
    o << "<line x1=\"" << fmt("%.2f", sx(t)) << "\" y1=\"" << py1 << "\" x2=\"" << fmt("%.2f", sx(t)) << "\" y2=\""
      << py1 + 5 << "\"/>\n";
  for (double t : ay.ticks)
    o << "<line x1=\"" << px0 - 5 << "\" y1=\"" << fmt("%.2f", syt(t)) << "\" x2=\"" << px0 << "\" y2=\""
      << fmt("%.2f", syt(t)) << "\"/>\n";
  o << "</g>\n";
  o << "<g fill=\"black\">\n";
  for (double t : ax.ticks)
    o << "<text x=\"" << fmt("%.2f", sx(t)) << "\" y=\"" << py1 + 19 << "\" text-anchor=\"middle\">"
      << xml_escape(tick_label(t, xstep, false)) << "</text>\n";
  for (double t : ay.ticks)
    o << "<text x=\"" << px0 - 8 << "\" y=\"" << fmt("%.2f", syt(t) + 4) << "\" text-anchor=\"end\">"
      << xml_escape(tick_label(t, ystep, ay.log)) << "</text>\n";
  o << "</g>\n";
  if (!opt.x_label.empty())
    o << "<text x=\"" << fmt("%.1f", (px0 + px1) / 2) << "\" y=\"" << opt.height - 12 << "\" text-anchor=\"middle\">"
      << xml_escape(opt.x_label) << "</text>\n";
  if (!opt.y_label.empty())
    o << "<text x=\"16\" y=\"" << fmt("%.1f", (py0 + py1) / 2) << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 "
      << fmt("%.1f", (py0 + py1) / 2) << ")\">" << xml_escape(opt.y_label) << "</text>\n";

  // One polyline per series (empty points when nothing is drawable).
  for (size_t k = 0; k < series.size(); ++k) {
    o << "<polyline fill=\"none\" stroke=\"" << kColors[k % std::size(kColors)]
      << "\" stroke-width=\"1.8\" stroke-linejoin=\"round\" points=\"";
    for (size_t i = 0; i < pts[k].size(); ++i) {
      if (i) o << ' ';
      o << fmt("%.2f", sx(pts[k][i].first)) << ',' << fmt("%.2f", sy(pts[k][i].second));
    }
    o << "\"><title>" << xml_escape(series[k].name) << "</title></polyline>\n";
  }

  // Legend in the corner of the plot area that hides the fewest curve samples (top-right on ties).
  size_t longest = 0;
  for (const Series& s : series) longest = std::max(longest, s.name.size());
  const double lw = 40 + 7.0 * static_cast<double>(longest), lh = 8 + 18.0 * static_cast<double>(series.size());
  const double corners[4][2] = {
      {px1 - lw - 8, py0 + 8}, {px0 + 8, py0 + 8}, {px1 - lw - 8, py1 - lh - 8}, {px0 + 8, py1 - lh - 8}};
  int best = 0;
  int64_t best_hidden = -1;
  for (int c = 0; c < 4; ++c) {
    int64_t hidden = 0;
    auto inside = [&](double x, double y) {
      constexpr double kMargin = 6;  // a curve touching the box counts as hidden
      return x >= corners[c][0] - kMargin && x <= corners[c][0] + lw + kMargin && y >= corners[c][1] - kMargin &&
             y <= corners[c][1] + lh + kMargin;
    };
    for (const auto& line : pts) {
      for (size_t i = 0; i < line.size(); ++i) {
        const double x1 = sx(line[i].first), y1 = sy(line[i].second);
        hidden += inside(x1, y1);
        if (i + 1 == line.size()) continue;
        const double x2 = sx(line[i + 1].first), y2 = sy(line[i + 1].second);
        for (int k = 1; k < 8; ++k) hidden += inside(x1 + (x2 - x1) * k / 8.0, y1 + (y2 - y1) * k / 8.0);
      }
    }
    if (best_hidden < 0 || hidden < best_hidden) best = c, best_hidden = hidden;
  }
  const double lx = corners[best][0], ly = corners[best][1];
  o << "<g>\n<rect x=\"" << fmt("%.1f", lx) << "\" y=\"" << fmt("%.1f", ly) << "\" width=\"" << fmt("%.1f", lw)
    << "\" height=\"" << fmt("%.1f", lh) << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999999\"/>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const double y = ly + 15 + 18.0 * static_cast<double>(k);
    o << "<line x1=\"" << fmt("%.1f", lx + 6) << "\" y1=\"" << fmt("%.1f", y - 4) << "\" x2=\"" << fmt("%.1f", lx + 30)
      << "\" y2=\"" << fmt("%.1f", y - 4) << "\" stroke=\"" << kColors[k % std::size(kColors)]
      << "\" stroke-width=\"2\"/>\n";
    o << "<text x=\"" << fmt("%.1f", lx + 36) << "\" y=\"" << fmt("%.1f", y) << "\">" << xml_escape(series[k].name)
      << "</text>\n";
  }
  o << "</g>\n</svg>\n";
  return o.str();
}

void write_svg_plot(const std::string& path, const std::string& title, const std::vector<Series>& series,
                    const PlotOptions& options) {
  const std::string svg = svg_plot(title, series, options);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  EMBER_CHECK(f.is_open(), IOError, "write_svg_plot: cannot open '", path, "' for writing");
  f << svg;
  f.flush();
  EMBER_CHECK(f.good(), IOError, "write_svg_plot: error writing '", path, "'");
}

}  // namespace ember::util
