#include "tests/support/catch_torch.hpp"

#include <ctime>

#include "core/strings.hpp"

using mlab::closest_match;
using mlab::edit_distance;

TEST_CASE("edit_distance matches hand-computed Levenshtein distances", "[core]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("abc", "") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);  // k->s, e->i, +g
  CHECK(edit_distance("flaw", "lawn") == 2);       // -f, +n
  CHECK(edit_distance("h2o", "h20") == 1);
  CHECK(edit_distance("tova", "tova") == 0);
}

TEST_CASE("closest_match picks the nearest known name or none", "[core]") {
  const std::vector<std::string> known = {"full", "h2o", "hqq", "mha2mla", "quanto", "tova"};
  CHECK(closest_match("h20", known) == "h2o");
  CHECK(closest_match("Quant", known) == "quanto");
  CHECK(closest_match("mha2mal", known) == "mha2mla");
  CHECK_FALSE(closest_match("completely-different", known).has_value());
  CHECK_FALSE(closest_match("x", {}).has_value());
}

TEST_CASE("unknown_name_message names the kind, the key, the match and all known names", "[core]") {
  const auto message = mlab::unknown_name_message("method", "tovaa", {"full", "tova"});
  CHECK(message == "unknown method 'tovaa'; did you mean 'tova'? known: full, tova");
  CHECK(mlab::unknown_name_message("task", "zzzzzz", {"gqa"}) == "unknown task 'zzzzzz' known: gqa");
}

TEST_CASE("format_now formats the current time in UTC as strftime does", "[core]") {
  const std::time_t before = std::time(nullptr);
  const std::string stamp = mlab::format_now("%Y-%m-%dT%H:%M:%SZ", true);
  const std::time_t after = std::time(nullptr);
  REQUIRE(stamp.size() == 20);
  std::tm tm{};
  REQUIRE(strptime(stamp.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  const std::time_t parsed = timegm(&tm);
  CHECK(parsed >= before);
  CHECK(parsed <= after);
  CHECK(mlab::format_now("%Y%m%d_%H%M%S", false).size() == 15);  // lmms-eval's date stamp
}
