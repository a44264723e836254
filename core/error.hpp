#pragma once
// mlab::Error and MLAB_CHECK: the one error type of code that has no tensors (STYLE.md rule 9).
// Messages carry context ("file: problem (values)"); layers add prefixes with rethrow_with_prefix.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mlab {

// Thrown for every user-facing failure outside tensor code: bad input files, bad usage, I/O.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Thrown for bad command-line usage (exit code 2 in main).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

// Concatenates its arguments with operator<< (write separators yourself).
template <class... Args>
std::string str_cat(Args&&... args) {
  return detail::concat(std::forward<Args>(args)...);
}

}  // namespace mlab

// Throws mlab::Error(message) when cond is false. The message arguments are concatenated.
#define MLAB_CHECK(cond, ...)                                 \
  do {                                                        \
    if (!(cond)) throw ::mlab::Error(::mlab::str_cat(__VA_ARGS__)); \
  } while (false)

// Unconditional failure with a message.
#define MLAB_FAIL(...) throw ::mlab::Error(::mlab::str_cat(__VA_ARGS__))
