#pragma once
// Learning-rate schedules of the MHA2MLA-VLM fine-tuning stages (Fan et al. 2026, Appendix A,
// Tables 5-6: warmup 10%, decay 10%; specs/method.md §6.2), Torch-free.
//
// - WSD, the authors' "constant_with_warmup_decay" (*/lr_scheduler.py:lr_scheduler_builder): a
//   warmup (linear from 0, or constant), a constant phase at the peak, a decay (linear, cosine or
//   1-sqrt) to min_decay_lr over lr_decay_steps from lr_decay_starting_step, then min_decay_lr.
//   Their YAML gives the step arguments as ratios of the total steps (utils.py:
//   convert_ratio_to_steps) and the total comes from the data (lr_scheduler.py:
//   calculate_max_steps). Their quirks are reproduced, not fixed (the oracle test runs their code):
//     * with 0 warmup steps and 0 decay steps (e.g. T < 10 with their 10% ratios) their lambda
//       returns the LR itself, not 1, as the LambdaLR factor: the LR becomes lr^2;
//     * a step argument of exactly 1 (or 1.0) is a ratio: 100% of the steps, not one step;
//     * lr_decay_steps unset = T - warmup - decay start (both subtracted).
//   One deviation: "constant" warmup reads `lr_scheduler_args.learning_rate`, a key their kwargs
//   do not carry (AttributeError); here it is the peak LR, the evident intent.
// - Cosine with warmup, transformers' get_cosine_with_min_lr_schedule_with_warmup (min_lr_rate 0
//   = get_cosine_schedule_with_warmup, the YAML's ignored `lr_scheduler_type: cosine`), warmup
//   steps ceil(warmup_ratio * T) as TrainingArguments.get_warmup_steps.
// Step t is 0-based: lr(t) is what optimizer step t + 1 uses in an HF Trainer loop (LambdaLR
// after t scheduler steps), computed with the same floating-point operations as the Python.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace mlab::training {

enum class WarmupStyle { kLinear, kConstant };
enum class DecayStyle { kLinear, kCosine, kOneMinusSqrt };

// "linear" | "constant"; throws mlab::Error naming the known styles.
WarmupStyle parse_warmup_style(std::string_view name);
// "linear" | "cosine" | "1-sqrt"; throws mlab::Error naming the known styles.
DecayStyle parse_decay_style(std::string_view name);
std::string_view warmup_style_name(WarmupStyle style);
std::string_view decay_style_name(DecayStyle style);

// The authors' optimizer_lr_scheduler_kwargs as their cfgs/stage{1,2}.yaml write them. A step
// argument in [0, 1] is a ratio of the total steps, any other value a step count (truncated);
// nullopt is YAML null (lr_scheduler_builder's defaults apply).
struct WsdSpec {
  double warmup_steps = 0.1;                           // lr_warmup_steps (their lambda needs it)
  WarmupStyle warmup_style = WarmupStyle::kLinear;     // lr_warmup_style
  std::optional<double> decay_starting_step = 0.9;     // lr_decay_starting_step
  std::optional<double> decay_steps = 0.1;             // lr_decay_steps
  DecayStyle decay_style = DecayStyle::kOneMinusSqrt;  // lr_decay_style
  double min_decay_lr = 0.0;                           // min_decay_lr (an LR, not a ratio)
};

// utils.py:convert_ratio_to_steps for one value: int(value * total_steps) for value in [0, 1],
// else int(value). Throws mlab::Error for a negative value (their set_lr_scheduler_args) or a
// negative total.
int64_t convert_ratio_to_steps(double value, int64_t total_steps);

// lr_scheduler.py:calculate_max_steps: max_steps when > 0, else
// ceil(epochs * max(dataset_size // (micro_batch * grad_accum * world_size), 1)).
// Throws mlab::Error for non-positive batch sizes, world size or epochs, or a negative size.
int64_t calculate_max_steps(int64_t dataset_size, int64_t micro_batch, int64_t grad_accum,
                            int64_t world_size, double epochs, int64_t max_steps = 0);

// transformers' TrainingArguments.get_warmup_steps with warmup_steps = 0: ceil(T * ratio).
int64_t warmup_steps_from_ratio(double warmup_ratio, int64_t total_steps);

// A schedule with every argument resolved to steps. Cheap to copy.
class LrSchedule {
 public:
  // The authors' WSD for `total_steps` optimizer steps: the spec's ratios converted and
  // lr_scheduler_builder's defaults applied (decay steps unset: T - warmup - decay start, as
  // theirs; decay start unset: the warmup steps). Throws mlab::Error for peak_lr <= 0, a negative
  // min_decay_lr or step argument, or total_steps < 0.
  static LrSchedule wsd(double peak_lr, const WsdSpec& spec, int64_t total_steps);
  // transformers' cosine with linear warmup over total_steps, decaying to min_lr_rate * peak_lr
  // (num_cycles 0.5: one half cosine). Throws mlab::Error for peak_lr <= 0, negative steps or
  // min_lr_rate outside [0, 1].
  static LrSchedule cosine_with_warmup(double peak_lr, int64_t warmup_steps, int64_t total_steps,
                                       double num_cycles = 0.5, double min_lr_rate = 0.0);

  // The LR of 0-based optimizer step `step` (>= 0). Past total_steps the formulas go on as the
  // Python's do (WSD: min_decay_lr; cosine: the cosine continues unless clamped at 0).
  // Throws mlab::Error for a negative step.
  double lr(int64_t step) const;

  double peak_lr() const { return peak_lr_; }
  int64_t total_steps() const { return total_steps_; }
  // Resolved arguments, e.g. {"kind": "wsd", "learning_rate": 5e-05, "total_steps": 5197,
  // "lr_warmup_steps": 519, ..., "min_decay_lr": 0} or {"kind": "cosine", ...}.
  nlohmann::json to_json() const;

 private:
  enum class Kind { kWsd, kCosine };
  LrSchedule() = default;

  Kind kind_ = Kind::kWsd;
  double peak_lr_ = 0.0;
  int64_t total_steps_ = 0;
  // WSD, resolved.
  int64_t warmup_steps_ = 0;
  WarmupStyle warmup_style_ = WarmupStyle::kLinear;
  int64_t decay_start_ = 0;
  int64_t decay_steps_ = 0;
  DecayStyle decay_style_ = DecayStyle::kOneMinusSqrt;
  double min_decay_lr_ = 0.0;
  // Cosine.
  double num_cycles_ = 0.5;
  double min_lr_rate_ = 0.0;
};

}  // namespace mlab::training
