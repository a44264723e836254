// The authors' WSD schedule and transformers' cosine with warmup (see lr_schedule.hpp). The
// arithmetic follows the Python expression by expression (same operand order), so that the
// values equal the oracles' to the last bit or nearly (tests/training/test_lr_schedule.cpp).
#include "training/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace mlab::training {

WarmupStyle parse_warmup_style(std::string_view name) {
  if (name == "linear") return WarmupStyle::kLinear;
  if (name == "constant") return WarmupStyle::kConstant;
  throw Error(unknown_name_message("warmup style", name, {"linear", "constant"}));
}

DecayStyle parse_decay_style(std::string_view name) {
  if (name == "linear") return DecayStyle::kLinear;
  if (name == "cosine") return DecayStyle::kCosine;
  if (name == "1-sqrt") return DecayStyle::kOneMinusSqrt;
  throw Error(unknown_name_message("decay style", name, {"linear", "cosine", "1-sqrt"}));
}

std::string_view warmup_style_name(WarmupStyle style) {
  return style == WarmupStyle::kLinear ? "linear" : "constant";
}

std::string_view decay_style_name(DecayStyle style) {
  switch (style) {
    case DecayStyle::kLinear:
      return "linear";
    case DecayStyle::kCosine:
      return "cosine";
    case DecayStyle::kOneMinusSqrt:
      return "1-sqrt";
  }
  return "?";
}

int64_t convert_ratio_to_steps(double value, int64_t total_steps) {
  MLAB_CHECK(std::isfinite(value) && value >= 0, "LR schedule: a step argument must be >= 0, got ",
             value);
  MLAB_CHECK(total_steps >= 0, "LR schedule: total steps must be >= 0, got ", total_steps);
  // Python's int() truncates toward zero; both operands are non-negative here.
  if (value <= 1.0) return static_cast<int64_t>(value * static_cast<double>(total_steps));
  return static_cast<int64_t>(value);
}

int64_t calculate_max_steps(int64_t dataset_size, int64_t micro_batch, int64_t grad_accum,
                            int64_t world_size, double epochs, int64_t max_steps) {
  if (max_steps > 0) return max_steps;
  MLAB_CHECK(dataset_size >= 0, "LR schedule: dataset size must be >= 0, got ", dataset_size);
  MLAB_CHECK(micro_batch > 0 && grad_accum > 0 && world_size > 0, "LR schedule: micro-batch (",
             micro_batch, "), gradient accumulation (", grad_accum, ") and world size (",
             world_size, ") must be > 0");
  MLAB_CHECK(std::isfinite(epochs) && epochs > 0, "LR schedule: epochs must be > 0, got ", epochs);
  const int64_t per_epoch =
      std::max<int64_t>(dataset_size / (micro_batch * grad_accum * world_size), 1);
  return static_cast<int64_t>(std::ceil(epochs * static_cast<double>(per_epoch)));
}

int64_t warmup_steps_from_ratio(double warmup_ratio, int64_t total_steps) {
  MLAB_CHECK(std::isfinite(warmup_ratio) && warmup_ratio >= 0 && total_steps >= 0,
             "LR schedule: warmup ratio (", warmup_ratio, ") and total steps (", total_steps,
             ") must be >= 0");
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * warmup_ratio));
}

LrSchedule LrSchedule::wsd(double peak_lr, const WsdSpec& spec, int64_t total_steps) {
  MLAB_CHECK(std::isfinite(peak_lr) && peak_lr > 0, "LR schedule: the peak LR must be > 0, got ",
             peak_lr);
  MLAB_CHECK(std::isfinite(spec.min_decay_lr) && spec.min_decay_lr >= 0,
             "LR schedule: min_decay_lr must be >= 0, got ", spec.min_decay_lr);
  LrSchedule s;
  s.kind_ = Kind::kWsd;
  s.peak_lr_ = peak_lr;
  s.total_steps_ = total_steps;
  s.warmup_steps_ = convert_ratio_to_steps(spec.warmup_steps, total_steps);
  s.warmup_style_ = spec.warmup_style;
  s.decay_style_ = spec.decay_style;
  s.min_decay_lr_ = spec.min_decay_lr;
  const std::optional<int64_t> start =
      spec.decay_starting_step
          ? std::optional<int64_t>(convert_ratio_to_steps(*spec.decay_starting_step, total_steps))
          : std::nullopt;
  // lr_scheduler_builder: unset decay steps = T - warmup - decay start (may be <= 0: no decay
  // phase), unset decay start = the warmup steps.
  if (spec.decay_steps) {
    s.decay_steps_ = convert_ratio_to_steps(*spec.decay_steps, total_steps);
  } else {
    s.decay_steps_ = total_steps - s.warmup_steps_ - start.value_or(0);
  }
  s.decay_start_ = start.value_or(s.warmup_steps_);
  return s;
}

LrSchedule LrSchedule::cosine_with_warmup(double peak_lr, int64_t warmup_steps, int64_t total_steps,
                                          double num_cycles, double min_lr_rate) {
  MLAB_CHECK(std::isfinite(peak_lr) && peak_lr > 0, "LR schedule: the peak LR must be > 0, got ",
             peak_lr);
  MLAB_CHECK(warmup_steps >= 0 && total_steps >= 0, "LR schedule: warmup (", warmup_steps,
             ") and total steps (", total_steps, ") must be >= 0");
  MLAB_CHECK(std::isfinite(num_cycles), "LR schedule: num_cycles must be finite");
  MLAB_CHECK(min_lr_rate >= 0 && min_lr_rate <= 1,
             "LR schedule: min_lr_rate must be in [0, 1], got ", min_lr_rate);
  LrSchedule s;
  s.kind_ = Kind::kCosine;
  s.peak_lr_ = peak_lr;
  s.warmup_steps_ = warmup_steps;
  s.total_steps_ = total_steps;
  s.num_cycles_ = num_cycles;
  s.min_lr_rate_ = min_lr_rate;
  return s;
}

double LrSchedule::lr(int64_t step) const {
  MLAB_CHECK(step >= 0, "LR schedule: step must be >= 0, got ", step);
  const double eta = peak_lr_;
  const double t = static_cast<double>(step);
  if (kind_ == Kind::kCosine) {
    // transformers' _get_cosine_schedule_with_warmup_lr_lambda (the min_lr_rate variant).
    double factor;
    if (step < warmup_steps_) {
      factor = t / static_cast<double>(std::max<int64_t>(1, warmup_steps_));
    } else {
      const double progress =
          static_cast<double>(step - warmup_steps_) /
          static_cast<double>(std::max<int64_t>(1, total_steps_ - warmup_steps_));
      factor = 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles_ * 2.0 * progress));
      factor = factor * (1 - min_lr_rate_) + min_lr_rate_;
      factor = std::max(0.0, factor);
    }
    return eta * factor;  // LambdaLR: base_lr * factor
  }
  // The authors' lr_lambda, which computes an LR and divides it by the peak; LambdaLR multiplies
  // the result by the peak again.
  const int64_t W = warmup_steps_, S = decay_start_, D = decay_steps_;
  const double m = min_decay_lr_;
  if (W == 0 && D == 0) return eta * eta;  // their early return skips the normalisation
  double value = m;
  if (step <= W) {
    value = warmup_style_ == WarmupStyle::kLinear
                ? eta * t / static_cast<double>(std::max<int64_t>(W, 1))
                : eta;
  } else if (step < S) {
    value = eta;
  } else if (step < S + D) {
    const double since = static_cast<double>(step - S), span = static_cast<double>(D);
    switch (decay_style_) {
      case DecayStyle::kCosine:
        value = m + (eta - m) * (1 + std::cos(std::numbers::pi * since / span)) / 2;
        break;
      case DecayStyle::kLinear:
        value = m + (eta - m) * (span - since) / span;
        break;
      case DecayStyle::kOneMinusSqrt:
        value = m + (eta - m) * (1 - std::sqrt(since / span));
        break;
    }
  } else {
    value = m;
  }
  return eta * (value / eta);
}

nlohmann::json LrSchedule::to_json() const {
  if (kind_ == Kind::kCosine) {
    return {{"kind", "cosine"},
            {"learning_rate", peak_lr_},
            {"total_steps", total_steps_},
            {"warmup_steps", warmup_steps_},
            {"num_cycles", num_cycles_},
            {"min_lr_rate", min_lr_rate_}};
  }
  return {{"kind", "wsd"},
          {"learning_rate", peak_lr_},
          {"total_steps", total_steps_},
          {"lr_warmup_steps", warmup_steps_},
          {"lr_warmup_style", warmup_style_name(warmup_style_)},
          {"lr_decay_starting_step", decay_start_},
          {"lr_decay_steps", decay_steps_},
          {"lr_decay_style", decay_style_name(decay_style_)},
          {"min_decay_lr", min_decay_lr_}};
}

}  // namespace mlab::training
