#pragma once
// Analytic KV-cache memory of a method stack on a model (issue F6), Torch-free.
//
// MHA2MLA-VLM (paper §3, Tables 1-2; specs/method.md §4): per token per layer the original cache
// holds E_orig = 2·n_kv·d_h elements, the "MHA-equivalent" cache E_MHA = 2·n_q·d_h and the MLA
// cache E_MLA = n_kv·(r + d_kv) (latent c of n_kv·d_kv plus the RoPE key of n_kv·r).
//   Table 1 "KV Mem." = E_MLA / E_MHA − 1                      (vs_mha_equivalent)
//   Table 2 "KV Mem." = E·b / (E_orig·16) − 1                  (vs_original)
// Quantized caches (specs/baselines.md §1.4, §2.5, §3.5; Quanto and HQQ as transformers' caches
// run them): nominal bytes = elements·b/8 (the paper); real bytes add one bf16 scale and one bf16
// zero-point per group of `group` elements and keep the newest `residual` tokens in the base dtype.
// Pruning (H2O, TOVA with a budget ratio) keeps a fraction of the tokens (specs/baselines.md §1.3).
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/config/model_config.hpp"

namespace mlab::methods {

// One element of a method stack: `name[:key=value,key=value]`.
struct MethodSpec {
  std::string name;                            // full | mha2mla | quanto | hqq | h2o | tova
  std::map<std::string, std::string> options;  // as written (validated numbers)
};

// Parses a stack such as "full", "mha2mla:d_kv=64", "mha2mla:d_kv=64,rope_dim=32+quanto:bits=4",
// "h2o:budget=0.5" or "mha2mla:d_kv=128+hqq:bits=2,group=64,residual=128". Methods are joined by
// '+', options follow ':' as comma-separated key=value pairs; spaces around words are ignored.
// Options per method: `mla-bench list methods` (method_options_help) prints them with their
// defaults. A stack has at most one mha2mla, one quantizer (quanto | hqq) and one pruner
// (h2o | tova | streaming_llm), in any order; `full` stands alone. Throws mlab::Error naming the
// spec and the problem: empty parts, unknown method names (with the closest match), unknown or
// repeated option keys, missing required options, non-numeric or out-of-range values, invalid
// stacks.
std::vector<MethodSpec> parse_method_stack(std::string_view spec);

// The canonical text of a parsed stack, every option written out with its resolved value:
// parse_method_stack("mha2mla:d_kv=64") -> "mha2mla:d_kv=64,rope_dim=32".
std::string format_method_stack(const std::vector<MethodSpec>& stack);

// KV-cache memory of one method stack on one model. "Per token per layer" figures are averages
// over the `tokens` tokens of the sequence (so pruning lowers them); totals are over all layers
// and `tokens` tokens. Percent changes are fractions (−0.84375 means −84.375%).
struct KvMemory {
  // Model geometry.
  int64_t layers = 0;        // L, decoder layers
  int64_t num_heads = 0;     // n_q
  int64_t num_kv_heads = 0;  // n_kv
  int64_t head_dim = 0;      // d_h
  int base_bits = 16;        // bits of the unquantized cache dtype (bf16: 16)
  // Method parameters (0 where the stack has no such part).
  int64_t d_kv = 0;            // mha2mla latent per kv head
  int64_t rope_dim = 0;        // mha2mla RoPE dimensions per kv head (r)
  int quant_bits = 0;          // quanto / hqq bits per element
  int64_t group = 0;           // quantization group size
  int64_t residual = 0;        // full-precision residual window (tokens)
  bool quantize_rope = false;  // mha2mla + quantizer: the RoPE key is quantized too
  double keep_ratio = 1.0;     // pruning budget (1: no pruning)
  // Token counts.
  int64_t tokens = 0;           // N, tokens of the sequence
  int64_t kept_tokens = 0;      // floor(N · keep_ratio): tokens held in the cache
  int64_t residual_tokens = 0;  // min(kept, residual) held in the base dtype (quantized stacks)

  // Per token per layer.
  int64_t elements_original = 0;  // E_orig = 2·n_kv·d_h
  int64_t elements_mha = 0;       // E_MHA = 2·n_q·d_h
  int64_t elements = 0;           // elements one cached token holds (E_MLA for mha2mla)
  double bytes_original = 0;      // E_orig · base_bits / 8
  double bytes_mha = 0;           // E_MHA · base_bits / 8
  double bytes_nominal = 0;       // elements · bits / 8 · keep_ratio (the paper's convention)
  double bytes_real = 0;          // total_bytes_real / (L · N): scales, zero-points, residual

  // Totals over L layers and N tokens.
  double total_bytes_original = 0;
  double total_bytes_mha = 0;
  double total_bytes_nominal = 0;
  double total_bytes_real = 0;

  // Changes (fractions; negative = saving).
  double vs_original = 0;             // bytes_nominal / bytes_original − 1 (Table 2)
  double vs_mha_equivalent = 0;       // bytes_nominal / bytes_mha − 1 (Table 1, Table 3)
  double real_vs_original = 0;        // bytes_real / bytes_original − 1
  double real_vs_mha_equivalent = 0;  // bytes_real / bytes_mha − 1
};

// The memory of `stack` on the decoder of `config` holding `tokens` tokens (> 0), the
// unquantized cache stored with `bits_of_base_dtype` bits (16: bf16/fp16, 32: fp32).
// prefill_tokens > 0: the sequence was a prefill of that many tokens followed by one-token
// decode steps, and the residual window of a quantized cache holds what transformers'
// schedule leaves there ((tokens − prefill) mod R); 0: the window's upper bound min(N, R).
// Throws mlab::Error for options that do not fit the model (rope_dim > d_h,
// d_kv > 2·d_h − rope_dim) or an invalid stack (as parse_method_stack).
KvMemory kv_memory(const models::ModelConfig& config, const std::vector<MethodSpec>& stack,
                   int64_t tokens, int bits_of_base_dtype = 16, int64_t prefill_tokens = 0);

// One line listing the options of method `name` with their defaults and allowed values
// ("bits=4 (2 | 4), group=64, ..."); "" for a method without options or an unknown name.
std::string method_options_help(std::string_view name);

// The "spec" of configs/methods/<name>.json (each method's documented default, or a preset),
// nullopt when there is no such config.
std::optional<std::string> method_preset(std::string_view name);

// The names of every method the spec grammar knows.
std::vector<std::string> spec_method_names();

// `fraction` as a percentage with two decimals, the way the paper prints it: rounded half away
// from zero ("-0.90625" -> "-90.63%", as Table 1; round-half-even would print -90.62%), a '+'
// for increases, "0.00%" for no change.
std::string format_percent(double fraction);

// Every field of `memory` as one JSON object (the schema of `mla-bench memory --json`).
nlohmann::json kv_memory_json(const KvMemory& memory);

}  // namespace mlab::methods
