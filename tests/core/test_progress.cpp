#include "tests/support/catch_torch.hpp"

#include <algorithm>
#include <sstream>

#include "core/progress.hpp"

namespace {
struct FakeClock {
  double now = 100.0;
  mlab::Progress::Clock fn() {
    return [this] { return now; };
  }
};
}  // namespace

TEST_CASE("format_duration renders m:ss and h:mm:ss", "[core][progress]") {
  CHECK(mlab::format_duration(0) == "0:00");
  CHECK(mlab::format_duration(59.4) == "0:59");
  CHECK(mlab::format_duration(61) == "1:01");
  CHECK(mlab::format_duration(3723) == "1:02:03");
  CHECK(mlab::format_duration(-1) == "?");
}

TEST_CASE("plain-line progress prints at most once per interval, with rate and ETA",
          "[core][progress]") {
  FakeClock clock;
  std::ostringstream out;
  mlab::Progress progress(out, 100, {.label = "eval", .unit = "samples", .log_interval_s = 10},
                          clock.fn());
  clock.now += 5;
  progress.advance(10);  // 5 s < interval: silent
  CHECK(out.str().empty());
  clock.now += 5;
  progress.advance(10);  // 20 done in 10 s: 2/s, 80 left -> 40 s
  CHECK(out.str() == "eval: 20/100 samples  2.00 samples/s  ETA 0:40  elapsed 0:10\n");
  clock.now += 1;
  progress.advance(1);
  const std::string after_one = out.str();
  CHECK(std::count(after_one.begin(), after_one.end(), '\n') == 1);
  clock.now += 9;
  progress.advance(79);
  progress.finish();
  progress.finish();  // idempotent
  const std::string text = out.str();
  INFO(text);
  CHECK(text.find("100/100 samples  5.00 samples/s  elapsed 0:20 (done)\n") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
}

TEST_CASE("terminal progress redraws one line with a bar", "[core][progress]") {
  FakeClock clock;
  std::ostringstream out;
  {
    mlab::Progress progress(out, 4, {.label = "convert", .unit = "layers", .tty = true,
                                     .bar_width = 4},
                            clock.fn());
    clock.now += 1;
    progress.advance(2);
    CHECK(out.str() == "\r\033[Kconvert [##..] 2/4 layers  2.00 layers/s  ETA 0:01  elapsed 0:01");
  }  // destroyed unfinished: ends the line
  CHECK(out.str().back() == '\n');
}

TEST_CASE("unknown totals print counts without ETA", "[core][progress]") {
  FakeClock clock;
  std::ostringstream out;
  mlab::Progress progress(out, 0, {.label = "scan", .log_interval_s = 0}, clock.fn());
  clock.now += 2;
  progress.advance(3);
  CHECK(out.str() == "scan: 3 it  1.50 it/s  elapsed 0:02\n");
}
