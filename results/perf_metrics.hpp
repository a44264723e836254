#pragma once
// The measured (non-score) metrics `mla-bench eval` stores beside each task's lmms-eval metrics
// in the `metrics` table, one row per (run, task, name). Their names carry the "perf:" prefix so
// no benchmark metric can collide with them; regress, report and the dashboard read them by
// these names.
#include <array>
#include <string_view>

namespace mlab::results {

struct PerfMetric {
  std::string_view name;
  int direction;  // +1 higher is better, -1 lower is better
  std::string_view unit;
  std::string_view doc;
};

inline constexpr std::string_view kPrefillTokensPerS = "perf:prefill_tokens_per_s";
inline constexpr std::string_view kDecodeTokensPerS = "perf:decode_tokens_per_s";
inline constexpr std::string_view kKvBytesPeak = "perf:kv_bytes_peak";
inline constexpr std::string_view kKvBytesPerToken = "perf:kv_bytes_per_token";
inline constexpr std::string_view kLatencyS = "perf:latency_s";

inline constexpr std::array<PerfMetric, 5> kPerfMetrics{{
    {kPrefillTokensPerS, +1, "tok/s",
     "prompt tokens (padding included) / prefill seconds (vision + prefill), over all batches"},
    {kDecodeTokensPerS, +1, "tok/s", "new tokens (batch rows x decode steps) / decode seconds"},
    {kKvBytesPeak, -1, "B", "largest KV cache of any batch (KvCache::bytes(), all layers)"},
    {kKvBytesPerToken, -1, "B", "KV bytes per cached token, all layers (measured)"},
    {kLatencyS, -1, "s", "mean seconds per sample (batch wall time / batch size)"},
}};

inline constexpr bool is_perf_metric(std::string_view name) { return name.substr(0, 5) == "perf:"; }

// Timings (tokens/s, latency) vary between machines and runs: regress lists them without gating,
// the dashboard marks them only beyond its own --speed-tolerance.
inline constexpr bool is_timing_metric(std::string_view name) {
  return name == kPrefillTokensPerS || name == kDecodeTokensPerS || name == kLatencyS;
}

// The entry for `name`, or nullptr.
inline constexpr const PerfMetric* find_perf_metric(std::string_view name) {
  for (const auto& m : kPerfMetrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace mlab::results
