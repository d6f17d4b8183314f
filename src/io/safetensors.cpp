// safetensors reader and writer. The reader is written for hostile input (it will be fuzzed):
// every header field is checked with overflow-safe arithmetic, nothing is allocated from a
// size in the file before that size is checked against the file's length, and no tensor is
// created until the whole header has been validated.
#include "ember/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "ember/core/grad_mode.hpp"
#include "io/crc32c.hpp"
#include "io/file_util.hpp"

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; a big-endian host would need byte swapping");

namespace ember::io {
namespace {

using json = nlohmann::json;

// The limit the reference implementation enforces: a larger header is either an attack or not
// a safetensors file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";
// The most dimensions a shape may have (as in NumPy 2): more is not a real tensor, and the
// bound keeps a header's arrays short.
constexpr uint64_t kMaxRank = 64;
// Metadata keys "crc32c.<tensor name>" hold a tensor's CRC-32C as 8 lowercase hex digits.
constexpr std::string_view kChecksumPrefix = "crc32c.";

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypeNames[] = {
    {"F32", DType::f32}, {"F64", DType::f64}, {"F16", DType::f16}, {"BF16", DType::bf16},
    {"I32", DType::i32}, {"I64", DType::i64}, {"U8", DType::u8},   {"BOOL", DType::boolean},
};
// Dtypes the format defines but Ember has no tensor type for: named distinctly in errors.
constexpr const char* kUnsupportedDTypeNames[] = {"I8",      "I16",     "U16", "U32",     "U64",     "F8_E4M3",
                                                  "F8_E5M2", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};

const char* format_dtype_name(DType t) {
  for (const auto& d : kDTypeNames)
    if (d.dtype == t) return d.name;
  return "?";
}

// ------------------------------------------------------------------ strings

// Offset of the first byte that does not start a well-formed UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are malformed), or n when all are well formed.
size_t first_invalid_utf8(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min_cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1Fu, min_cp = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0Fu, min_cp = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07u, min_cp = 0x10000;
    } else {
      return i;
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const uint8_t cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return n;
}

bool is_utf8(const std::string& s) {
  return first_invalid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size()) == s.size();
}

// Appends s as a JSON string literal. Only '"', '\\' and control characters need escaping;
// other bytes (valid UTF-8, checked by the caller) are written as they are.
void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// A name from a file, quoted and cut short, for error messages.
std::string quoted(const std::string& s) {
  constexpr size_t kMax = 80;
  std::string out;
  append_json_string(out, s.size() > kMax ? s.substr(0, kMax) + "..." : s);
  return out;
}

// A JSON value from a file, serialised and cut short, for error messages.
std::string shown(const json& v) {
  constexpr size_t kMax = 80;
  std::string s = v.dump();
  return s.size() > kMax ? s.substr(0, kMax) + "..." : s;
}

uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian host (static_assert above)
}

// ------------------------------------------------------------------ header validation

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin;
  uint64_t end;
  bool has_checksum = false;  // a "crc32c.<name>" metadata entry exists
  uint32_t checksum = 0;
};

struct Header {
  uint64_t data_start = 0;  // absolute offset of the data area: 8 + header length
  uint64_t data_size = 0;
  std::vector<Entry> entries;
  Metadata metadata;
};

// Carries the "<op>: '<path>'" prefix of every message.
struct Reporter {
  std::string where;
  template <class... Args>
  [[noreturn]] void fail(const Args&... args) const {
    EMBER_THROW(IOError, where, ": ", args...);
  }
};

// Checks the total size and the 8-byte prefix; returns the header length.
uint64_t header_length(const uint8_t* first8, uint64_t total, const Reporter& r) {
  uint64_t n = load_le64(first8);
  if (n > kMaxHeaderBytes)
    r.fail("header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes (not a safetensors file?)");
  if (n > total - 8) r.fail("header length ", n, " runs past the end of the file: 8 + ", n, " > file size ", total);
  if (n < 2) r.fail("header length ", n, " is too small for the JSON object a header is (at least 2 bytes, \"{}\")");
  return n;
}

void check_total_size(uint64_t total, const Reporter& r) {
  if (total < 8) r.fail("file is ", total, " bytes, shorter than the 8-byte header length prefix");
}

// A JSON value that is a non-negative integer.
bool as_u64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    const auto x = v.get<int64_t>();
    if (x < 0) return false;
    *out = static_cast<uint64_t>(x);
    return true;
  }
  return false;
}

DType parse_dtype(const std::string& name, const json& v, const Reporter& r) {
  if (!v.is_string()) r.fail("tensor ", quoted(name), ": dtype must be a string, found ", v.type_name());
  const auto& s = v.get_ref<const std::string&>();
  for (const auto& d : kDTypeNames)
    if (s == d.name) return d.dtype;
  for (const char* u : kUnsupportedDTypeNames)
    if (s == u)
      r.fail("tensor ", quoted(name), ": unsupported dtype ", quoted(s),
             " (Ember reads F32, F64, F16, BF16, I32, I64, U8 and BOOL)");
  r.fail("tensor ", quoted(name), ": unknown dtype ", quoted(s));
}

Entry parse_entry(const std::string& name, const json& v, const Reporter& r) {
  if (!v.is_object()) r.fail("tensor ", quoted(name), ": entry must be a JSON object, found ", v.type_name());
  for (const auto& [k, _] : v.items()) {
    if (k != "dtype" && k != "shape" && k != "data_offsets")
      r.fail("tensor ", quoted(name), ": unexpected field ", quoted(k),
             " (an entry has exactly dtype, shape and data_offsets)");
  }
  for (const char* k : {"dtype", "shape", "data_offsets"})
    if (!v.contains(k)) r.fail("tensor ", quoted(name), ": missing field \"", k, "\"");

  Entry e;
  e.name = name;
  e.dtype = parse_dtype(name, v["dtype"], r);

  const json& shape = v["shape"];
  if (!shape.is_array()) r.fail("tensor ", quoted(name), ": shape must be an array, found ", shape.type_name());
  // numel, and the product of the non-zero sizes: the latter bounds the strides Ember computes,
  // so it must fit in int64 even when a zero size makes numel 0.
  uint64_t numel = 1, extent = 1;
  for (const json& d : shape) {
    uint64_t size;
    if (!as_u64(d, &size) || size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      r.fail("tensor ", quoted(name), ": shape entries must be non-negative integers, found ", shown(d));
    if (size != 0 && (__builtin_mul_overflow(extent, size, &extent) ||
                      extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
      r.fail("tensor ", quoted(name), ": shape ", shown(shape), " overflows a 64-bit element count");
    numel = size == 0 ? 0 : numel * size;  // <= extent: cannot overflow
    e.shape.push_back(static_cast<int64_t>(size));
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(itemsize(e.dtype)), &nbytes))
    r.fail("tensor ", quoted(name), ": shape ", shown(shape), " overflows a 64-bit byte count");

  const json& offs = v["data_offsets"];
  if (!offs.is_array() || offs.size() != 2)
    r.fail("tensor ", quoted(name), ": data_offsets must be an array of two integers, found ", shown(offs));
  if (!as_u64(offs[0], &e.begin) || !as_u64(offs[1], &e.end))
    r.fail("tensor ", quoted(name), ": data_offsets must be non-negative integers, found ", shown(offs));
  if (e.end < e.begin)
    r.fail("tensor ", quoted(name), ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  if (e.end - e.begin != nbytes)
    r.fail("tensor ", quoted(name), ": data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin,
           " bytes but dtype ", format_dtype_name(e.dtype), " and shape ", shown(shape), " need ", nbytes);
  return e;
}

void parse_metadata(const json& v, Metadata* out, const Reporter& r) {
  if (!v.is_object()) r.fail("\"__metadata__\" must be an object of strings, found ", v.type_name());
  for (const auto& [k, s] : v.items()) {
    if (!s.is_string()) r.fail("\"__metadata__\" value of ", quoted(k), " must be a string, found ", s.type_name());
    out->emplace(k, s.get<std::string>());
  }
}

// Moves every "crc32c.<name>" metadata entry onto its tensor's entry, checking its form.
void attach_checksums(Header& h, const Reporter& r) {
  std::map<std::string_view, Entry*> by_name;
  for (Entry& e : h.entries) by_name.emplace(e.name, &e);
  for (auto it = h.metadata.lower_bound(std::string(kChecksumPrefix));
       it != h.metadata.end() && it->first.starts_with(kChecksumPrefix); ++it) {
    const std::string_view name = std::string_view(it->first).substr(kChecksumPrefix.size());
    const std::string& v = it->second;
    const auto found = by_name.find(name);
    if (found == by_name.end())
      r.fail("metadata ", quoted(it->first), " is a checksum for tensor ", quoted(std::string(name)),
             ", which the file does not have");
    bool ok = v.size() == 8;
    uint32_t crc = 0;
    for (size_t i = 0; ok && i < v.size(); ++i) {
      const char c = v[i];
      if (c >= '0' && c <= '9') {
        crc = (crc << 4) | static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        crc = (crc << 4) | static_cast<uint32_t>(c - 'a' + 10);
      } else {
        ok = false;
      }
    }
    if (!ok)
      r.fail("tensor ", quoted(std::string(name)), ": malformed checksum ", quoted(v), " in metadata ",
             quoted(it->first), " (expected 8 lowercase hex digits of CRC-32C)");
    found->second->has_checksum = true;
    found->second->checksum = crc;
  }
}

std::string checksum_text(uint32_t crc) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(8, '0');
  for (int i = 7; i >= 0; --i, crc >>= 4) s[static_cast<size_t>(i)] = kHex[crc & 0xFu];
  return s;
}

// Checks the data of `e` (nbytes at p) against its stored checksum, if any.
void verify_checksum(const Entry& e, const void* p, const Reporter& r) {
  if (!e.has_checksum) return;
  const uint32_t crc = detail::crc32c(p, static_cast<size_t>(e.end - e.begin));
  if (crc != e.checksum)
    r.fail("tensor ", quoted(e.name), ": checksum mismatch: stored crc32c ", checksum_text(e.checksum),
           ", computed ", checksum_text(crc), " from its ", e.end - e.begin, " bytes (the data are corrupt)");
}

// Parses and validates the JSON header `text[0, n)`; data_start / data_size describe the rest
// of the file.
Header parse_header(const char* text, size_t n, uint64_t data_start, uint64_t data_size, const Reporter& r) {
  const size_t bad = first_invalid_utf8(reinterpret_cast<const uint8_t*>(text), n);
  if (bad != n) r.fail("header is not valid UTF-8 (byte ", bad, " of the header)");
  // nlohmann's lexer takes a NUL byte for the end of input and would ignore what follows it.
  if (const void* nul = std::memchr(text, 0, n))
    r.fail("header contains a NUL byte (at byte ", static_cast<const char*>(nul) - text, " of the header)");
  // Writers pad the header with spaces to align the data; nothing else may follow the object.
  size_t len = n;
  while (len > 0 && text[len - 1] == ' ') --len;
  if (len == 0 || text[0] != '{') r.fail("header is not a JSON object (it must start with '{')");

  // One frame per open object or array. Objects keep their key sets: JSON parsers keep the last
  // of duplicate keys silently, which would let two readers of the same file see different
  // tensors. Arrays count their elements: every array in a valid header is short (a shape, or
  // the two data_offsets), and stopping long ones here keeps a header of a million numbers
  // from being built into a DOM first.
  struct Frame {
    bool array = false;
    uint64_t count = 0;
    std::unordered_set<std::string> keys;
  };
  std::vector<Frame> open;
  auto count_element = [&] {
    if (!open.empty() && open.back().array && ++open.back().count > kMaxRank)
      r.fail("header has an array of more than ", kMaxRank, " elements (a shape has at most ", kMaxRank,
             " dimensions, data_offsets 2)");
  };
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        // {entries: {fields: [sizes]}}: anything deeper is malformed, and stopping here keeps
        // hostile nesting from costing memory.
        if (depth >= 3) r.fail("header nests deeper than a safetensors header can (depth ", depth + 1, ")");
        count_element();
        open.emplace_back().array = event == json::parse_event_t::array_start;
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open.empty() && !open.back().keys.insert(parsed.get<std::string>()).second)
          r.fail("header has a duplicate key ", quoted(parsed.get<std::string>()));
        break;
      case json::parse_event_t::value: count_element(); break;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text, text + len, callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    r.fail("header is not valid JSON: ", e.what());
  }
  if (!root.is_object()) r.fail("header is not a JSON object");
  // JSON allows trailing whitespace of any kind; the format pads with spaces only.
  if (text[len - 1] != '}') r.fail("header has trailing bytes after the JSON object (only spaces may pad it)");

  Header h;
  h.data_start = data_start;
  h.data_size = data_size;
  h.entries.reserve(root.size());
  for (const auto& [name, value] : root.items()) {
    if (name == kMetadataKey) {
      parse_metadata(value, &h.metadata, r);
    } else {
      h.entries.push_back(parse_entry(name, value, r));
    }
  }

  attach_checksums(h, r);

  // The byte ranges, sorted, must cover [0, data_size) exactly once. Zero-size tensors may sit
  // at any boundary between (or around) the others.
  std::vector<size_t> order(h.entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Entry& x = h.entries[a];
    const Entry& y = h.entries[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t covered = 0;
  for (size_t i : order) {
    const Entry& e = h.entries[i];
    if (e.begin > covered)
      r.fail("tensor ", quoted(e.name), " starts at data byte ", e.begin, " leaving a gap after byte ", covered,
             " (data_offsets must tile the data area)");
    if (e.begin < covered)
      r.fail("tensor ", quoted(e.name), " starts at data byte ", e.begin, " overlapping data that ends at byte ",
             covered, " (data_offsets must tile the data area)");
    covered = e.end;
  }
  if (covered != data_size)
    r.fail("tensors cover ", covered, " bytes of data but the file has ", data_size,
           " bytes after the header (data_offsets must tile the data area to the end of the file)");
  return h;
}

// Validates a complete file held in memory.
Header parse_buffer(const uint8_t* data, uint64_t size, const Reporter& r) {
  check_total_size(size, r);
  const uint64_t n = header_length(data, size, r);
  return parse_header(reinterpret_cast<const char*>(data) + 8, static_cast<size_t>(n), 8 + n, size - 8 - n, r);
}

// A C++ bool must hold 0 or 1; any other byte would make reads of the tensor undefined.
void check_bool_bytes(const Entry& e, const uint8_t* p, uint64_t n, const Reporter& r) {
  for (uint64_t i = 0; i < n; ++i)
    if (p[i] > 1)
      r.fail("tensor ", quoted(e.name), ": BOOL element ", i, " has byte value ", int(p[i]), " (must be 0 or 1)");
}

// Tensors over the validated data area. With `mapping`, aligned tensors alias it (and keep it
// alive); otherwise, and for misaligned data, the bytes are copied.
TensorMap make_tensors(const uint8_t* data_area, const Header& h, const std::shared_ptr<detail::MappedFile>& mapping,
                       const Reporter& r) {
  TensorMap out;
  for (const Entry& e : h.entries) {
    const uint64_t nbytes = e.end - e.begin;
    const uint8_t* src = data_area + e.begin;
    verify_checksum(e, src, r);
    if (e.dtype == kBool) check_bool_bytes(e, src, nbytes, r);
    Tensor t;
    if (mapping && nbytes > 0 && reinterpret_cast<uintptr_t>(src) % itemsize(e.dtype) == 0) {
      DataPtr p{const_cast<uint8_t*>(src), [keep = mapping](void*) {}, Device::cpu()};
      t = make_tensor(std::make_shared<Storage>(std::move(p), static_cast<size_t>(nbytes)), e.shape,
                      contiguous_strides(e.shape), 0, e.dtype);
    } else {
      t = empty(e.shape, {.dtype = e.dtype});
      if (nbytes > 0) std::memcpy(t.data_ptr(), src, static_cast<size_t>(nbytes));
    }
    out.emplace(e.name, std::move(t));
  }
  return out;
}

// ------------------------------------------------------------------ writing

// The header (padded) and the tensors' CPU contiguous data, in the order they are written.
struct Prepared {
  std::string header;
  std::vector<Tensor> data;
  uint64_t data_bytes = 0;
};

Prepared prepare(const char* op, const TensorMap& tensors, const Metadata& user_metadata, const SaveOptions& options) {
  Prepared p;
  std::string tensor_json;
  Metadata checksums;
  NoGradGuard no_grad;
  for (const auto& [name, t] : tensors) {
    EMBER_CHECK(name != kMetadataKey, ValueError, op, ": a tensor cannot be named \"__metadata__\" (the format ",
                "reserves that key for metadata)");
    EMBER_CHECK(is_utf8(name), ValueError, op, ": tensor name ", quoted(name), " is not valid UTF-8");
    EMBER_CHECK(t.defined(), ValueError, op, ": tensor ", quoted(name), " is undefined");
    EMBER_CHECK(static_cast<uint64_t>(t.dim()) <= kMaxRank, ValueError, op, ": tensor ", quoted(name), " has ",
                t.dim(), " dimensions; safetensors files hold at most ", kMaxRank);
    Tensor c = t.detach().to(Device::cpu()).contiguous();
    const auto nbytes = static_cast<uint64_t>(c.nbytes());
    if (!tensor_json.empty()) tensor_json += ',';
    append_json_string(tensor_json, name);
    tensor_json += ":{\"dtype\":\"";
    tensor_json += format_dtype_name(c.dtype());
    tensor_json += "\",\"shape\":[";
    for (size_t i = 0; i < c.shape().size(); ++i) {
      if (i > 0) tensor_json += ',';
      tensor_json += std::to_string(c.shape()[i]);
    }
    tensor_json += "],\"data_offsets\":[";
    tensor_json += std::to_string(p.data_bytes);
    tensor_json += ',';
    tensor_json += std::to_string(p.data_bytes + nbytes);
    tensor_json += "]}";
    p.data_bytes += nbytes;
    if (options.checksums)
      checksums.emplace(std::string(kChecksumPrefix) + name,
                        checksum_text(detail::crc32c(c.data_ptr(), static_cast<size_t>(nbytes))));
    p.data.push_back(std::move(c));
  }

  for (const auto& [k, v] : user_metadata) {
    EMBER_CHECK(is_utf8(k), ValueError, op, ": metadata key ", quoted(k), " is not valid UTF-8");
    EMBER_CHECK(is_utf8(v), ValueError, op, ": metadata value of ", quoted(k), " is not valid UTF-8");
    EMBER_CHECK(!options.checksums || !k.starts_with(kChecksumPrefix), ValueError, op, ": metadata key ", quoted(k),
                " starts with \"crc32c.\", which is reserved for the checksums that SaveOptions::checksums writes");
  }
  const Metadata* metadata = &user_metadata;
  if (options.checksums) {
    checksums.insert(user_metadata.begin(), user_metadata.end());  // disjoint key sets (checked above)
    metadata = &checksums;
  }

  std::string& h = p.header;
  h += '{';
  if (!metadata->empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : *metadata) {
      if (!first) h += ',';
      first = false;
      append_json_string(h, k);
      h += ':';
      append_json_string(h, v);
    }
    h += '}';
    if (!tensor_json.empty()) h += ',';
  }
  h += tensor_json;
  h += '}';
  // Spaces up to a multiple of 8, so that data written after the 8-byte prefix start 8-aligned.
  h.append((8 - h.size() % 8) % 8, ' ');
  EMBER_CHECK(h.size() <= kMaxHeaderBytes, ValueError, op, ": the header would be ", h.size(),
              " bytes, over the format's limit of ", kMaxHeaderBytes, " (too many tensors or too much metadata)");
  return p;
}

void store_le64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace

std::vector<uint8_t> serialize_safetensors(const TensorMap& tensors, const Metadata& metadata,
                                           const SaveOptions& options) {
  Prepared p = prepare("serialize_safetensors", tensors, metadata, options);
  std::vector<uint8_t> out(8 + p.header.size() + p.data_bytes);
  store_le64(out.data(), p.header.size());
  std::memcpy(out.data() + 8, p.header.data(), p.header.size());
  uint8_t* dst = out.data() + 8 + p.header.size();
  for (const Tensor& t : p.data) {
    const auto n = static_cast<size_t>(t.nbytes());
    if (n > 0) std::memcpy(dst, t.data_ptr(), n);
    dst += n;
  }
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata,
                      const SaveOptions& options) {
  constexpr const char* kOp = "save_safetensors";
  Prepared p = prepare(kOp, tensors, metadata, options);
  detail::AtomicFileWriter w(kOp, path);
  uint8_t prefix[8];
  store_le64(prefix, p.header.size());
  w.write(prefix, 8);
  w.write(p.header.data(), p.header.size());
  for (const Tensor& t : p.data)
    if (t.nbytes() > 0) w.write(t.data_ptr(), static_cast<size_t>(t.nbytes()));
  w.commit();
}

TensorMap deserialize_safetensors(const uint8_t* data, size_t size, Metadata* metadata) {
  const Reporter r{"deserialize_safetensors: buffer of " + std::to_string(size) + " bytes"};
  if (data == nullptr && size > 0) r.fail("null data pointer");
  const uint8_t empty_buffer[1] = {0};
  if (data == nullptr) data = empty_buffer;
  Header h = parse_buffer(data, size, r);
  TensorMap out = make_tensors(data + h.data_start, h, nullptr, r);
  if (metadata) *metadata = std::move(h.metadata);
  return out;
}

TensorMap load_safetensors(const std::string& path, Metadata* metadata, const LoadOptions& options) {
  constexpr const char* kOp = "load_safetensors";
  const Reporter r{std::string(kOp) + ": '" + path + "'"};
  uint64_t size = 0;
  detail::FileDescriptor fd = detail::open_regular_file(kOp, path, &size);
  check_total_size(size, r);

  Header h;
  TensorMap out;
  if (options.mmap) {
    // Parse the mapping itself (not a separate read), so header and data are one snapshot.
    auto mapping = detail::MappedFile::map(kOp, path, fd.get(), size);
    fd.reset();
    h = parse_buffer(mapping->data(), size, r);
    out = make_tensors(mapping->data() + h.data_start, h, mapping, r);
  } else {
    uint8_t prefix[8];
    detail::read_exact_at(kOp, path, fd.get(), prefix, 8, 0);
    const uint64_t n = header_length(prefix, size, r);
    std::string text(static_cast<size_t>(n), '\0');  // n <= file size, checked above
    detail::read_exact_at(kOp, path, fd.get(), text.data(), text.size(), 8);
    h = parse_header(text.data(), text.size(), 8 + n, size - 8 - n, r);
    for (const Entry& e : h.entries) {
      Tensor t = empty(e.shape, {.dtype = e.dtype});
      const uint64_t nbytes = e.end - e.begin;
      if (nbytes > 0)
        detail::read_exact_at(kOp, path, fd.get(), t.data_ptr(), static_cast<size_t>(nbytes), h.data_start + e.begin);
      verify_checksum(e, t.data_ptr(), r);  // also for empty tensors: a stored value must be crc32c("") = 0
      if (e.dtype == kBool) check_bool_bytes(e, static_cast<const uint8_t*>(t.data_ptr()), nbytes, r);
      out.emplace(e.name, std::move(t));
    }
  }
  if (metadata) *metadata = std::move(h.metadata);
  return out;
}

}  // namespace ember::io
