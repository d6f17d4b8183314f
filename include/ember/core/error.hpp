// ember::Error and its subclasses. Every failure a user can cause (shapes, dtypes, devices,
// files, options) is reported through one of these, with a message that says what was expected
// and what was found.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

#include "ember/core/macros.hpp"

namespace ember {

class EMBER_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// Shapes that do not fit together (broadcasting, matmul, views).
class EMBER_API ShapeError : public Error {
 public:
  using Error::Error;
};
/// A dtype that an operation does not accept.
class EMBER_API DTypeError : public Error {
 public:
  using Error::Error;
};
/// Tensors on different devices, or a device that is not available.
class EMBER_API DeviceError : public Error {
 public:
  using Error::Error;
};
/// An index or dimension out of range.
class EMBER_API IndexError : public Error {
 public:
  using Error::Error;
};
/// A bad argument value (negative size, bad option).
class EMBER_API ValueError : public Error {
 public:
  using Error::Error;
};
/// Autograd misuse: backward twice, modified saved tensors, non-scalar roots.
class EMBER_API AutogradError : public Error {
 public:
  using Error::Error;
};
/// A file that could not be read or written, or whose contents are malformed.
class EMBER_API IOError : public Error {
 public:
  using Error::Error;
};
/// An allocation that failed; the message says what was asked and what is held.
class EMBER_API OutOfMemory : public Error {
 public:
  using Error::Error;
};
/// A valid request that this build or device does not implement.
class EMBER_API NotImplemented : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace ember

/// Throws `Kind` (an ember::Error subclass) with the streamed message when `cond` is false.
/// Unlike assert, it stays in release builds: use it for every check of user input.
#define EMBER_CHECK(cond, Kind, ...)                                \
  do {                                                              \
    if (!(cond)) throw Kind(::ember::detail::str_cat(__VA_ARGS__)); \
  } while (0)

#define EMBER_THROW(Kind, ...) throw Kind(::ember::detail::str_cat(__VA_ARGS__))
