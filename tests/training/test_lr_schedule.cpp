// training/lr_schedule: the authors' WSD schedule (lr_scheduler.py, utils.py) and transformers'
// cosine with warmup, step by step against the values their Python produced
// (tests/data/training/lr_schedule.json, tools/fixtures/make_lr_schedule_fixtures.py).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/test_files.hpp"
#include "training/lr_schedule.hpp"

using Catch::Matchers::Contains;
using mlab::training::LrSchedule;
using mlab::training::WsdSpec;

namespace {

// A YAML step argument: a number, or null.
std::optional<double> step_arg(const nlohmann::json& v) {
  if (v.is_null()) return std::nullopt;
  return v.get<double>();
}

WsdSpec spec_of(const nlohmann::json& kwargs) {
  WsdSpec s;
  s.warmup_steps = kwargs.at("lr_warmup_steps").get<double>();
  s.warmup_style =
      mlab::training::parse_warmup_style(kwargs.at("lr_warmup_style").get<std::string>());
  s.decay_starting_step = step_arg(kwargs.at("lr_decay_starting_step"));
  s.decay_steps = step_arg(kwargs.at("lr_decay_steps"));
  s.decay_style = mlab::training::parse_decay_style(kwargs.at("lr_decay_style").get<std::string>());
  s.min_decay_lr = kwargs.at("min_decay_lr").get<double>();
  return s;
}

}  // namespace

TEST_CASE("LR schedules equal the authors' lr_scheduler.py and transformers' cosine step by step",
          "[training][lr]") {
  const auto fixture =
      mlab::test::read_json(mlab::test::data_dir() / "training" / "lr_schedule.json");
  const bool report = std::getenv("MLAB_TEST_REPORT") != nullptr;
  int cases = 0;
  for (const auto& c : fixture.at("cases")) {
    const std::string name = c.at("name");
    INFO(name);
    const double peak = c.at("learning_rate");
    const int64_t total = c.at("total_steps");
    std::optional<LrSchedule> schedule;
    if (c.at("kind") == "wsd") {
      // calculate_max_steps and convert_ratio_to_steps as their train_stage{1,2}.py call them.
      CHECK(mlab::training::calculate_max_steps(
                c.at("dataset_size"), c.at("per_device_train_batch_size"),
                c.at("gradient_accumulation_steps"), c.at("world_size"),
                c.at("num_train_epochs").get<double>(), c.at("max_steps")) == total);
      const auto& kwargs = c.at("kwargs");
      const auto& converted = c.at("converted");
      for (const char* key : {"lr_warmup_steps", "lr_decay_starting_step", "lr_decay_steps"}) {
        if (kwargs.at(key).is_null()) continue;
        CHECK(mlab::training::convert_ratio_to_steps(kwargs.at(key).get<double>(), total) ==
              converted.at(key).get<int64_t>());
      }
      schedule = LrSchedule::wsd(peak, spec_of(kwargs), total);
      const auto j = schedule->to_json();
      CHECK(j.at("lr_warmup_steps") == converted.at("lr_warmup_steps"));
    } else {
      const int64_t warmup = c.at("warmup_steps");
      CHECK(mlab::training::warmup_steps_from_ratio(c.at("warmup_ratio").get<double>(), total) ==
            warmup);
      schedule = LrSchedule::cosine_with_warmup(peak, warmup, total, c.at("num_cycles"),
                                                c.at("min_lr_rate"));
    }
    const auto& lrs = c.at("lr");
    REQUIRE(lrs.size() == static_cast<size_t>(total + 3));
    double max_rel = 0;
    int64_t exact = 0;
    for (size_t t = 0; t < lrs.size(); ++t) {
      const double expected = lrs[t].get<double>();
      const double ours = schedule->lr(static_cast<int64_t>(t));
      const double rel = std::abs(ours - expected) / std::max(std::abs(expected), 1e-300);
      if (ours == expected) ++exact;
      max_rel = std::max(max_rel, expected == 0 ? std::abs(ours) : rel);
      INFO("step " << t << ": ours " << ours << ", theirs " << expected);
      REQUIRE((ours == expected || rel <= 1e-12));
    }
    if (report) {
      std::printf("%-28s T=%-5lld %lld/%zu bit-exact, max rel diff %.3g\n", name.c_str(),
                  static_cast<long long>(total), static_cast<long long>(exact), lrs.size(),
                  max_rel);
    }
    ++cases;
  }
  CHECK(cases >= 20);
}

TEST_CASE("the authors' quirks are reproduced", "[training][lr]") {
  const WsdSpec authors;  // their cfgs: 10% warmup, decay from 90% for 10%, 1-sqrt, to 0
  // T = 8: int(0.8) = 0 warmup and decay steps; their early return makes the LR lr^2.
  const auto tiny = LrSchedule::wsd(1e-3, authors, 8);
  CHECK(tiny.lr(0) == 1e-3 * 1e-3);
  CHECK(tiny.lr(7) == 1e-3 * 1e-3);
  // T = 100: warmup 10 steps from 0, constant to step 89, 1-sqrt decay over 90..99, then 0.
  const auto s = LrSchedule::wsd(1e-4, authors, 100);
  CHECK(s.lr(0) == 0.0);
  CHECK(s.lr(10) == Approx(1e-4));
  CHECK(s.lr(50) == Approx(1e-4));
  CHECK(s.lr(90) == Approx(1e-4));
  CHECK(s.lr(99) == Approx(1e-4 * (1 - std::sqrt(0.9))));
  CHECK(s.lr(100) == 0.0);
  // A step argument of exactly 1 is 100%.
  CHECK(mlab::training::convert_ratio_to_steps(1, 40) == 40);
  CHECK(mlab::training::convert_ratio_to_steps(1.5, 40) == 1);
  CHECK(mlab::training::convert_ratio_to_steps(25.9, 40) == 25);
}

TEST_CASE("bad schedule arguments are refused", "[training][lr]") {
  CHECK_THROWS_WITH(mlab::training::parse_decay_style("cosin"), Contains("did you mean 'cosine'?"));
  CHECK_THROWS_WITH(mlab::training::parse_warmup_style("linar"), Contains("linear"));
  CHECK_THROWS_WITH(LrSchedule::wsd(0, {}, 10), Contains("peak LR must be > 0"));
  WsdSpec negative;
  negative.decay_steps = -1;
  CHECK_THROWS_WITH(LrSchedule::wsd(1e-3, negative, 10), Contains("must be >= 0, got -1"));
  CHECK_THROWS_WITH(LrSchedule::wsd(1e-3, {}, 10).lr(-1), Contains("step must be >= 0"));
  CHECK_THROWS_WITH(mlab::training::calculate_max_steps(10, 0, 1, 1, 1),
                    Contains("micro-batch (0)"));
  CHECK(mlab::training::calculate_max_steps(10, 0, 1, 1, 1, 7) == 7);  // max_steps wins
}
