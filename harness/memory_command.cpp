// mla-bench memory: analytic KV-cache bytes of a method stack on a model (MHA2MLA-VLM Tables 1-2,
// methods/kv_memory.hpp).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "core/error.hpp"
#include "harness/commands.hpp"
#include "methods/kv_memory.hpp"
#include "methods/kv_method.hpp"
#include "models/config/model_config.hpp"

namespace mlab::harness {
namespace {

// "4096 B" for whole numbers, "1520.25 B" otherwise.
std::string bytes_text(double bytes) {
  char buffer[64];
  if (bytes == std::floor(bytes) && std::fabs(bytes) < 1e15) {
    std::snprintf(buffer, sizeof buffer, "%.0f B", bytes);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.2f B", bytes);
  }
  return buffer;
}

// "134217728 B (128.00 MiB)".
std::string total_text(double bytes) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, " (%.2f MiB)", bytes / (1024.0 * 1024.0));
  return bytes_text(bytes) + buffer;
}

std::string row(const std::string& label, const std::string& per_token, const std::string& total) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, "  %-24s %-32s %s\n", label.c_str(), per_token.c_str(),
                total.c_str());
  return buffer;
}

}  // namespace

int run_memory(const MemoryOptions& options, std::ostream& out) {
  if (options.tokens <= 0) {
    throw UsageError("mla-bench memory: --tokens must be > 0 (got " +
                     std::to_string(options.tokens) + ")");
  }
  // F11 D10: N is converted to double and multiplied by layers and bytes per token; above 2^53 the
  // conversion is inexact and floor(N * keep) no longer fits int64 (it printed negative bytes).
  constexpr int64_t kMaxTokens = int64_t{1} << 53;
  if (options.tokens > kMaxTokens) {
    throw UsageError("mla-bench memory: --tokens " + std::to_string(options.tokens) +
                     " is too large (limit 2^53 = " + std::to_string(kMaxTokens) + ")");
  }
  std::vector<methods::MethodSpec> stack;
  try {
    stack = methods::parse_method_stack(methods::expand_method_presets(options.method));
  } catch (const Error& e) {
    throw UsageError(std::string("mla-bench memory: --method: ") + e.what());
  }
  const auto config = models::load_model_config(options.config);
  const auto m = methods::kv_memory(config, stack, options.tokens);
  const std::string method = methods::format_method_stack(stack);
  // F11 D10: every count and byte total must stay finite and non-negative (no int64 wrap).
  for (const double v : {static_cast<double>(m.kept_tokens), static_cast<double>(m.residual_tokens),
                         m.total_bytes_original, m.total_bytes_mha, m.total_bytes_nominal,
                         m.total_bytes_real}) {
    if (!std::isfinite(v) || v < 0) {
      throw UsageError("mla-bench memory: --tokens " + std::to_string(options.tokens) +
                       " overflows the byte arithmetic for " + options.config.string());
    }
  }

  if (options.json) {
    auto report = methods::kv_memory_json(m);
    report["config"] = options.config.string();
    report["model_type"] = std::string(models::family_name(config.family));
    report["method"] = method;
    out << report.dump(2) << "\n";
    return 0;
  }

  const std::string e = " elems";
  out << "model:  " << options.config.string() << " (" << models::family_name(config.family)
      << "): " << m.layers << " layers, " << m.num_heads << " heads, " << m.num_kv_heads
      << " kv heads, head_dim " << m.head_dim << ", cache dtype " << m.base_bits << "-bit\n";
  out << "method: " << method << "\n";
  out << "tokens: " << m.tokens << " (cached " << m.kept_tokens;
  if (m.quant_bits > 0) out << ", " << m.residual_tokens << " of them in full precision";
  out << ")\n\n";
  out << row(
      "", "per token per layer",
      "total (" + std::to_string(m.layers) + " layers x " + std::to_string(m.tokens) + " tokens)");
  out << row("original cache",
             std::to_string(m.elements_original) + e + ", " + bytes_text(m.bytes_original),
             total_text(m.total_bytes_original));
  out << row("MHA-equivalent cache",
             std::to_string(m.elements_mha) + e + ", " + bytes_text(m.bytes_mha),
             total_text(m.total_bytes_mha));
  // With pruning the byte columns are averages over the N tokens (elements are per cached token).
  std::string kept;
  if (m.keep_ratio < 1.0) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, " x %g kept", m.keep_ratio);
    kept = buffer;
  }
  out << row("method, nominal (paper)",
             std::to_string(m.elements) + e + kept + ", " + bytes_text(m.bytes_nominal),
             total_text(m.total_bytes_nominal));
  out << row("method, real", bytes_text(m.bytes_real), total_text(m.total_bytes_real));
  out << "\nchange vs original cache (Table 2):       nominal "
      << methods::format_percent(m.vs_original) << ", real "
      << methods::format_percent(m.real_vs_original) << "\n";
  out << "change vs MHA-equivalent cache (Table 1): nominal "
      << methods::format_percent(m.vs_mha_equivalent) << ", real "
      << methods::format_percent(m.real_vs_mha_equivalent) << "\n";
  return 0;
}

}  // namespace mlab::harness
