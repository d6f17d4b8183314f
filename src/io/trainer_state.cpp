// trainer.json: TrainerState <-> JSON (nlohmann, private to this file).
//
// Output is deterministic: nlohmann's default object keeps keys sorted, the indent is two
// spaces, integers are printed exactly and doubles in the shortest form that reads back to the
// same bits. JSON has no NaN or infinity, so those are stored as the strings "nan", "inf" and
// "-inf". Parsing is strict: unknown or duplicate keys, wrong types, non-integral counters and
// out-of-range values are errors that name the source and the field.
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/error.hpp"
#include "ember/io/checkpoint.hpp"

namespace ember::io {
namespace {

using json = nlohmann::json;

constexpr const char* kFormat = "ember-checkpoint";
constexpr int64_t kFormatVersion = 1;

json encode_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

// Reports a malformed field: "trainer_state_from_json: <source>: field '<field>': <what>".
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    EMBER_THROW(IOError, "trainer_state_from_json: ", source_, ": field '", field, "': ", what);
  }
  [[noreturn]] void fail_document(const std::string& what) const {
    EMBER_THROW(IOError, "trainer_state_from_json: ", source_, ": ", what);
  }

  static std::string describe(const json& v) {
    std::string text = v.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return std::string(v.type_name()) + " " + text;
  }

  const json& object(const json& v, const std::string& field) const {
    if (!v.is_object()) fail(field, "expected an object, found " + describe(v));
    return v;
  }

  int64_t int64(const json& v, const std::string& field, int64_t min) const {
    int64_t x = 0;
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(field, "expected an integer that fits in int64, found " + describe(v));
      x = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      x = v.get<int64_t>();
    } else {
      fail(field, "expected an integer, found " + describe(v));
    }
    if (x < min) fail(field, "expected an integer >= " + std::to_string(min) + ", found " + std::to_string(x));
    return x;
  }

  uint64_t uint64(const json& v, const std::string& field) const {
    // nlohmann stores non-negative integers as unsigned, so a signed one here is negative.
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    fail(field, "expected an unsigned integer, found " + describe(v));
  }

  double real(const json& v, const std::string& field) const {
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
      if (s == "inf") return std::numeric_limits<double>::infinity();
      if (s == "-inf") return -std::numeric_limits<double>::infinity();
    }
    fail(field, "expected a number or one of the strings \"nan\", \"inf\", \"-inf\", found " + describe(v));
  }

  std::string string(const json& v, const std::string& field) const {
    if (!v.is_string()) fail(field, "expected a string, found " + describe(v));
    return v.get<std::string>();
  }

  /// Checks that `obj` has every key of `required` and no key outside `required` + `optional`.
  void keys(const json& obj, const std::string& field, const std::vector<std::string>& required,
            const std::vector<std::string>& optional) const {
    const std::string prefix = field.empty() ? "" : field + ".";
    for (const std::string& k : required)
      if (!obj.contains(k)) fail(prefix + k, "missing (required)");
    for (const auto& [k, v] : obj.items()) {
      bool known = false;
      for (const std::string& r : required) known = known || r == k;
      for (const std::string& o : optional) known = known || o == k;
      if (!known) fail(prefix + k, "unknown field (a typo, or a checkpoint from another program?)");
    }
  }

  template <class T, class F>
  std::map<std::string, T> map(const json& root, const std::string& field, F read_one) const {
    std::map<std::string, T> out;
    if (!root.contains(field)) return out;
    for (const auto& [k, v] : object(root.at(field), field).items()) out.emplace(k, read_one(v, field + "." + k));
    return out;
  }

 private:
  const std::string& source_;
};

}  // namespace

std::string trainer_state_to_json(const TrainerState& s) {
  json j = json::object();
  j["format"] = kFormat;
  j["format_version"] = kFormatVersion;
  j["step"] = s.step;
  j["epoch"] = s.epoch;
  j["loader"] = {{"epoch", s.loader.epoch}, {"batch", s.loader.batch}};
  json gens = json::object();
  for (const auto& [name, g] : s.generators) gens[name] = {{"seed", g.seed}, {"offset", g.offset}};
  j["generators"] = std::move(gens);
  auto doubles = [](const std::map<std::string, double>& m) {
    json o = json::object();
    for (const auto& [k, v] : m) o[k] = encode_double(v);
    return o;
  };
  j["scheduler"] = doubles(s.scheduler);
  j["grad_scaler"] = doubles(s.grad_scaler);
  j["values"] = doubles(s.values);
  json counters = json::object();
  for (const auto& [k, v] : s.counters) counters[k] = v;
  j["counters"] = std::move(counters);
  json config = json::object();
  for (const auto& [k, v] : s.config) config[k] = v;
  j["config"] = std::move(config);
  j["ember_version"] = s.ember_version;
  try {
    return j.dump(2, ' ', false, json::error_handler_t::strict) + "\n";
  } catch (const json::type_error& e) {  // JSON text must be UTF-8
    EMBER_THROW(ValueError,
                "trainer_state_to_json: expected UTF-8 text in every name, config value and "
                "ember_version: ",
                e.what());
  }
}

TrainerState trainer_state_from_json(const std::string& text, const std::string& source) {
  const Reader r(source);

  // nlohmann keeps the last of duplicate keys silently; a strict reader refuses them.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  const json::parser_callback_t track_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      if (!open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text, track_keys, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    r.fail_document(std::string("not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) r.fail(duplicate, "duplicate key");
  if (!root.is_object()) r.fail_document("expected a JSON object at the top level, found " + Reader::describe(root));

  // The format first, so that a foreign file gets the clearest message.
  if (!root.contains("format"))
    r.fail("format", std::string("missing: this is not an Ember checkpoint's trainer.json (expected \"format\": \"") +
                         kFormat + "\")");
  if (const std::string f = r.string(root.at("format"), "format"); f != kFormat)
    r.fail("format", std::string("expected \"") + kFormat + "\", found \"" + f + "\"");
  if (!root.contains("format_version")) r.fail("format_version", "missing (required)");
  if (const int64_t v = r.int64(root.at("format_version"), "format_version", 0); v != kFormatVersion)
    r.fail("format_version", "this Ember reads version " + std::to_string(kFormatVersion) + ", found version " +
                                 std::to_string(v) + " (written by a different Ember release?)");
  r.keys(root, "", {"format", "format_version", "step", "epoch", "loader"},
         {"generators", "scheduler", "grad_scaler", "counters", "values", "config", "ember_version"});

  TrainerState s;
  s.step = r.int64(root.at("step"), "step", 0);
  s.epoch = r.int64(root.at("epoch"), "epoch", 0);
  const json& loader = r.object(root.at("loader"), "loader");
  r.keys(loader, "loader", {"epoch", "batch"}, {});
  s.loader.epoch = r.int64(loader.at("epoch"), "loader.epoch", 0);
  s.loader.batch = r.int64(loader.at("batch"), "loader.batch", 0);

  s.generators = r.map<GeneratorState>(root, "generators", [&](const json& v, const std::string& field) {
    r.object(v, field);
    r.keys(v, field, {"seed", "offset"}, {});
    return GeneratorState{r.uint64(v.at("seed"), field + ".seed"), r.uint64(v.at("offset"), field + ".offset")};
  });
  const auto real = [&](const json& v, const std::string& field) { return r.real(v, field); };
  s.scheduler = r.map<double>(root, "scheduler", real);
  s.grad_scaler = r.map<double>(root, "grad_scaler", real);
  s.values = r.map<double>(root, "values", real);
  s.counters = r.map<int64_t>(root, "counters", [&](const json& v, const std::string& field) {
    return r.int64(v, field, std::numeric_limits<int64_t>::min());
  });
  s.config =
      r.map<std::string>(root, "config", [&](const json& v, const std::string& field) { return r.string(v, field); });
  if (root.contains("ember_version")) s.ember_version = r.string(root.at("ember_version"), "ember_version");
  return s;
}

}  // namespace ember::io
