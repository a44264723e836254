#include "core/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ostream>

namespace mlab {

namespace {
double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format_rate(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), rate >= 100 ? "%.0f" : (rate >= 10 ? "%.1f" : "%.2f"), rate);
  return buf;
}
}  // namespace

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string format_fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, value);
  return buf;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[40];
  if (h > 0) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", h, m, s);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld", m, s);
  }
  return buf;
}

bool Progress::is_terminal(int fd) { return ::isatty(fd) == 1; }

Progress::Progress(std::ostream& out, int64_t total, ProgressOptions options, Clock clock)
    : out_(out), total_(total), options_(std::move(options)), clock_(std::move(clock)) {
  if (!clock_) clock_ = steady_seconds;
  start_ = last_print_ = clock_();
}

Progress::~Progress() {
  if (!finished_ && options_.tty && done_ > 0) out_ << '\n' << std::flush;
}

void Progress::advance(int64_t n) {
  done_ += n;
  const double now = clock_();
  const double interval = options_.tty ? options_.tty_interval_s : options_.log_interval_s;
  if (now - last_print_ >= interval || (total_ > 0 && done_ >= total_ && options_.tty)) {
    last_print_ = now;
    print(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  print(true);
}

std::string Progress::status_text() const {
  const double elapsed = clock_() - start_;
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  std::string text = std::to_string(done_);
  if (total_ > 0) text += "/" + std::to_string(total_);
  text += " " + options_.unit;
  if (rate > 0) text += "  " + format_rate(rate) + " " + options_.unit + "/s";
  if (total_ > 0 && done_ < total_) {
    text += "  ETA " + (rate > 0 ? format_duration(static_cast<double>(total_ - done_) / rate) : "?");
  }
  text += "  elapsed " + format_duration(elapsed);
  return text;
}

void Progress::print(bool final) {
  if (options_.tty) {
    std::string bar;
    if (total_ > 0) {
      const double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
      const int filled = static_cast<int>(fraction * options_.bar_width);
      bar = "[" + std::string(filled, '#') + std::string(options_.bar_width - filled, '.') + "] ";
    }
    out_ << "\r\033[K" << options_.label << " " << bar << status_text();
    if (final) out_ << '\n';
    out_ << std::flush;
  } else {
    out_ << options_.label << ": " << status_text() << (final ? " (done)" : "") << '\n' << std::flush;
  }
}

}  // namespace mlab
