// inspect: shows what a safetensors file or an Ember checkpoint holds.
//
//   inspect FILE.safetensors        tensors (name, dtype, shape, bytes, checksum), then metadata
//   inspect CHECKPOINT_DIR          a step-XXXXXXXX directory: model and optimizer files as above,
//                                   then trainer.json's fields (step, epoch, loader, generators,
//                                   counters, values, config, version)
//   inspect RUN_DIR                 a directory of checkpoints (or a --out directory with a
//                                   checkpoints/ subdirectory): the list, then the newest
//   inspect PATH --json             the same as one JSON object
//
// Everything is loaded and validated as a training run would load it (io::load_safetensors,
// io::load_checkpoint), so a file that inspect accepts is one that a run can resume from. The
// last lines are "tensors: N" and "bytes: B" (all files together). On a bad input it prints
// "inspect: error: <reason>" on stderr and exits 1.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ember/ember.hpp>
#include <ember/io/checkpoint.hpp>

namespace {

namespace fs = std::filesystem;
namespace io = ember::io;

struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t bytes = 0;
  std::string checksum;  // "ok" (stored and verified by the loader) or "-" (none stored)
};

struct FileInfo {
  std::string path;
  std::vector<TensorInfo> tensors;
  io::Metadata metadata;  // without the crc32c.* entries, which show as the checksum column
  int64_t bytes = 0;      // tensor data
};

constexpr const char* kChecksumPrefix = "crc32c.";

// Loads (and so validates, checksums included) a safetensors file.
FileInfo read_file(const std::string& path) {
  EMBER_CHECK(fs::exists(path), ember::IOError, path, ": no such file or directory");
  EMBER_CHECK(fs::is_regular_file(path), ember::IOError, path, ": not a regular file");
  io::Metadata meta;
  const io::TensorMap tensors = io::load_safetensors(path, &meta);
  FileInfo info;
  info.path = path;
  for (const auto& [name, t] : tensors) {
    TensorInfo ti;
    ti.name = name;
    ti.dtype = ember::dtype_name(t.dtype());
    for (int64_t d : t.shape()) ti.shape.push_back(d);
    ti.bytes = t.nbytes();
    ti.checksum = meta.count(kChecksumPrefix + name) > 0 ? "ok" : "-";
    info.bytes += ti.bytes;
    info.tensors.push_back(std::move(ti));
  }
  for (auto& [k, v] : meta)
    if (k.rfind(kChecksumPrefix, 0) != 0) info.metadata[k] = v;
  return info;
}

// The shortest %g text that reads back as exactly `v`.
std::string double_text(double v) {
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// ---- text output ----------------------------------------------------------------------------

void print_file(const FileInfo& f) {
  std::printf("file: %s\n", f.path.c_str());
  size_t wn = 4, wd = 5, ws = 5;
  for (const TensorInfo& t : f.tensors) {
    wn = std::max(wn, t.name.size());
    wd = std::max(wd, t.dtype.size());
    ws = std::max(ws, shape_text(t.shape).size());
  }
  std::printf("  %-*s  %-*s  %-*s  %12s  %s\n", static_cast<int>(wn), "name", static_cast<int>(wd), "dtype",
              static_cast<int>(ws), "shape", "bytes", "checksum");
  for (const TensorInfo& t : f.tensors) {
    std::printf("  %-*s  %-*s  %-*s  %12lld  %s\n", static_cast<int>(wn), t.name.c_str(), static_cast<int>(wd),
                t.dtype.c_str(), static_cast<int>(ws), shape_text(t.shape).c_str(), static_cast<long long>(t.bytes),
                t.checksum.c_str());
  }
  std::printf("  %zu tensors, %lld bytes\n", f.tensors.size(), static_cast<long long>(f.bytes));
  if (f.metadata.empty()) {
    std::printf("  metadata: (none)\n");
  } else {
    std::printf("  metadata:\n");
    for (const auto& [k, v] : f.metadata) std::printf("    %s = %s\n", k.c_str(), v.c_str());
  }
}

void print_trainer(const io::TrainerState& t) {
  std::printf("trainer:\n");
  std::printf("  step: %lld\n", static_cast<long long>(t.step));
  std::printf("  epoch: %lld\n", static_cast<long long>(t.epoch));
  std::printf("  loader: epoch %lld, batch %lld\n", static_cast<long long>(t.loader.epoch),
              static_cast<long long>(t.loader.batch));
  std::printf("  generators:%s\n", t.generators.empty() ? " (none)" : "");
  for (const auto& [name, g] : t.generators)
    std::printf("    %s: seed %llu, offset %llu\n", name.c_str(), static_cast<unsigned long long>(g.seed),
                static_cast<unsigned long long>(g.offset));
  std::printf("  scheduler:%s\n", t.scheduler.empty() ? " (none)" : "");
  for (const auto& [k, v] : t.scheduler) std::printf("    %s = %s\n", k.c_str(), double_text(v).c_str());
  std::printf("  grad_scaler:%s\n", t.grad_scaler.empty() ? " (none)" : "");
  for (const auto& [k, v] : t.grad_scaler) std::printf("    %s = %s\n", k.c_str(), double_text(v).c_str());
  std::printf("  counters:%s\n", t.counters.empty() ? " (none)" : "");
  for (const auto& [k, v] : t.counters) std::printf("    %s = %lld\n", k.c_str(), static_cast<long long>(v));
  std::printf("  values:%s\n", t.values.empty() ? " (none)" : "");
  for (const auto& [k, v] : t.values) std::printf("    %s = %s\n", k.c_str(), double_text(v).c_str());
  std::printf("  config:%s\n", t.config.empty() ? " (none)" : "");
  for (const auto& [k, v] : t.config) std::printf("    %s = %s\n", k.c_str(), v.c_str());
  std::printf("  version: %s\n", t.ember_version.c_str());
}

// ---- JSON output ----------------------------------------------------------------------------

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string file_json(const FileInfo& f) {
  std::string s = "{\"path\": " + json_string(f.path) + ", \"tensors\": [";
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const TensorInfo& t = f.tensors[i];
    s += (i > 0 ? ", " : "");
    s += "{\"name\": " + json_string(t.name) + ", \"dtype\": " + json_string(t.dtype) + ", \"shape\": [";
    for (size_t j = 0; j < t.shape.size(); ++j) s += (j > 0 ? ", " : "") + std::to_string(t.shape[j]);
    s += "], \"bytes\": " + std::to_string(t.bytes) +
         ", \"checksum\": " + (t.checksum == "ok" ? std::string("\"ok\"") : std::string("null")) + "}";
  }
  s += "], \"metadata\": {";
  bool first = true;
  for (const auto& [k, v] : f.metadata) {
    s += (first ? "" : ", ") + json_string(k) + ": " + json_string(v);
    first = false;
  }
  return s + "}, \"bytes\": " + std::to_string(f.bytes) + "}";
}

// ---- the command ----------------------------------------------------------------------------

struct Report {
  std::string kind;  // "safetensors" or "checkpoint"
  std::string path;
  std::vector<std::string> checkpoints;  // for a run directory: all complete checkpoints
  std::vector<FileInfo> files;
  std::optional<io::TrainerState> trainer;
};

Report inspect(const std::string& path) {
  EMBER_CHECK(fs::exists(path), ember::IOError, path, ": no such file or directory");
  Report r;
  if (!fs::is_directory(path)) {
    r.kind = "safetensors";
    r.path = path;
    r.files.push_back(read_file(path));
    return r;
  }
  std::string checkpoint = path;
  if (!fs::exists(fs::path(path) / "trainer.json")) {
    // A run directory (or a --out directory holding checkpoints/): its newest checkpoint.
    std::string run_dir = path;
    if (fs::is_directory(fs::path(path) / "checkpoints")) run_dir = (fs::path(path) / "checkpoints").string();
    r.checkpoints = io::CheckpointManager(run_dir).list();
    EMBER_CHECK(!r.checkpoints.empty(), ember::IOError, path,
                ": not a checkpoint (no trainer.json) and no complete checkpoint (step-NNNNNNNN directory) in ",
                run_dir);
    checkpoint = r.checkpoints.back();
  }
  // Validates all three files (checksums included) as a resuming run would.
  const io::Checkpoint ck = io::load_checkpoint(checkpoint);
  r.kind = "checkpoint";
  r.path = ck.path;
  r.files.push_back(read_file((fs::path(ck.path) / "model.safetensors").string()));
  r.files.push_back(read_file((fs::path(ck.path) / "optimizer.safetensors").string()));
  r.trainer = ck.trainer;
  return r;
}

void print_text(const Report& r) {
  if (!r.checkpoints.empty()) {
    std::printf("checkpoints (%zu, oldest first):\n", r.checkpoints.size());
    for (const std::string& c : r.checkpoints) std::printf("  %s\n", c.c_str());
    std::printf("newest:\n");
  }
  if (r.kind == "checkpoint") std::printf("checkpoint: %s\n", r.path.c_str());
  for (const FileInfo& f : r.files) print_file(f);
  if (r.trainer) print_trainer(*r.trainer);
  size_t tensors = 0;
  int64_t bytes = 0;
  for (const FileInfo& f : r.files) {
    tensors += f.tensors.size();
    bytes += f.bytes;
  }
  std::printf("tensors: %zu\n", tensors);
  std::printf("bytes: %lld\n", static_cast<long long>(bytes));
}

void print_json(const Report& r) {
  size_t tensors = 0;
  int64_t bytes = 0;
  std::string s = "{\"kind\": " + json_string(r.kind) + ", \"path\": " + json_string(r.path);
  if (!r.checkpoints.empty()) {
    s += ", \"checkpoints\": [";
    for (size_t i = 0; i < r.checkpoints.size(); ++i) s += (i > 0 ? ", " : "") + json_string(r.checkpoints[i]);
    s += "]";
  }
  s += ", \"files\": [";
  for (size_t i = 0; i < r.files.size(); ++i) {
    s += (i > 0 ? ", " : "") + file_json(r.files[i]);
    tensors += r.files[i].tensors.size();
    bytes += r.files[i].bytes;
  }
  s += "]";
  if (r.trainer) s += ", \"trainer\": " + io::trainer_state_to_json(*r.trainer);
  s += ", \"tensors\": " + std::to_string(tensors) + ", \"bytes\": " + std::to_string(bytes) + "}";
  std::printf("%s\n", s.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  bool json = false;
  CLI::App app{
      "Show the tensors (name, dtype, shape, bytes, checksum) and metadata of a safetensors file, or of an Ember "
      "checkpoint with its trainer state. Exits 1 with the reason when the input does not load."};
  app.add_option("path", path, "FILE.safetensors, a checkpoint directory (step-XXXXXXXX) or a run directory")
      ->required();
  app.add_flag("--json", json, "print one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);
  try {
    const Report r = inspect(path);
    if (json) {
      print_json(r);
    } else {
      print_text(r);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "inspect: error: %s\n", e.what());
    return 1;
  }
}
