#pragma once
// Progress reporting for long commands (DESIGN.md §1): a redrawn bar with rate and ETA on a
// terminal, periodic plain log lines otherwise (CI logs, files, pipes).
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

namespace mlab {

struct ProgressOptions {
  std::string label = "progress";  // printed before the counts
  std::string unit = "it";         // "samples", "steps", ...
  bool tty = false;                // true: redraw one line with '\r'; false: plain lines
  double tty_interval_s = 0.1;     // minimum time between redraws on a terminal
  double log_interval_s = 10.0;    // minimum time between plain lines
  int bar_width = 30;
};

// Not thread-safe: call from the thread that owns the loop. `total` 0 means unknown.
class Progress {
 public:
  using Clock = std::function<double()>;  // seconds, monotonic

  // Writes to `out`. `clock` defaults to std::chrono::steady_clock (tests pass a fake one).
  Progress(std::ostream& out, int64_t total, ProgressOptions options, Clock clock = {});
  ~Progress();  // finishes the line on a terminal if `finish` was not called

  void advance(int64_t n = 1);  // n more items done; prints when an interval has passed
  void finish();                // prints the final line (total, elapsed, mean rate) once

  int64_t done() const { return done_; }
  // "12/40 samples  3.1 samples/s  ETA 0:09" (no bar); public for tests and log lines.
  std::string status_text() const;

  // True when `fd` is a terminal (isatty).
  static bool is_terminal(int fd);

 private:
  void print(bool final);

  std::ostream& out_;
  int64_t total_;
  ProgressOptions options_;
  Clock clock_;
  double start_ = 0;
  double last_print_ = 0;
  int64_t done_ = 0;
  bool finished_ = false;
};

// "1:02:03" / "2:03" for a duration in seconds; "?" for negative or non-finite values.
std::string format_duration(double seconds);

// Seconds elapsed on the steady clock since `start` (phase timings of the commands).
double seconds_since(std::chrono::steady_clock::time_point start);

// `value` with `digits` decimals, as printf's "%.*f".
std::string format_fixed(double value, int digits);

}  // namespace mlab
