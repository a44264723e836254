// Analytic KV-cache memory (MHA2MLA-VLM Tables 1-2; specs/method.md §4, specs/baselines.md §1.4,
// §2.5, §3.5). See kv_memory.hpp for the formulas.
#include "methods/kv_memory.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <system_error>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace mlab::methods {
namespace {


enum class Role { kFull, kConversion, kQuantizer, kPruner };
enum class Kind { kInteger, kReal, kWord };

struct OptionSchema {
  std::string key;
  Kind kind = Kind::kInteger;
  std::optional<std::string> default_value;  // nullopt: required (or optional, below)
  // Empty when `value` is acceptable, else what is wrong ("must be 2 or 4").
  std::string (*check)(double value) = nullptr;
  std::vector<std::string> words;  // kWord: the accepted values
  bool optional = false;           // no default, may be absent (one of a set, see one_of)
  std::string doc;                 // for --help and `list methods`
};

struct MethodSchema {
  std::string name;
  Role role = Role::kFull;
  std::vector<OptionSchema> options;
  std::vector<std::string> one_of;  // exactly one of these optional keys must be given
};

std::string positive(double v) { return v > 0 ? "" : "must be > 0"; }
std::string non_negative(double v) { return v >= 0 ? "" : "must be >= 0"; }
std::string even_non_negative(double v) {
  return v >= 0 && std::fmod(v, 2.0) == 0 ? "" : "must be even and >= 0";
}
std::string zero_or_one(double v) { return v == 0 || v == 1 ? "" : "must be 0 or 1"; }
std::string quanto_bits(double v) {
  return v == 2 || v == 4 ? "" : "must be 2 or 4 (Int2 / Int4: optimum-quanto qint2 / qint4)";
}
std::string hqq_bits(double v) {
  return v == 2 || v == 4 ? "" : "must be 2 or 4 (Int2 / Int4, the paper's settings)";
}
std::string quanto_axis(double v) { return v == 0 || v == -1 ? "" : "must be 0 or -1"; }
std::string hqq_axis(double v) { return v == 0 || v == 1 ? "" : "must be 0 or 1"; }
std::string open_ratio(double v) {
  return v > 0 && v < 1 ? "" : "must be in (0, 1) (the kept fraction of the tokens)";
}
std::string fraction(double v) { return v >= 0 && v < 1 ? "" : "must be in [0, 1)"; }

const std::vector<MethodSchema>& schemas() {
  static const std::vector<MethodSchema> table = [] {
    auto quantizer = [](std::string name, std::string (*bits_check)(double),
                        std::string (*axis_check)(double), const char* axes) {
      MethodSchema schema{std::move(name),
                          Role::kQuantizer,
                          {{"bits", Kind::kInteger, "4", bits_check, {}, false, "2 | 4"},
                           {"group", Kind::kInteger, "64", positive, {}, false,
                            "elements per scale/zero group"},
                           {"residual", Kind::kInteger, "128", non_negative, {}, false,
                            "full-precision residual window R (tokens)"},
                           {"axis_key", Kind::kInteger, "0", axis_check, {}, false, axes},
                           {"axis_value", Kind::kInteger, "0", axis_check, {}, false, axes},
                           {"quantize_rope", Kind::kInteger, "0", zero_or_one, {}, false,
                            "on an MLA latent: quantize k_rope too (0 | 1)"},
                           {"target", Kind::kWord, "latent", nullptr, {"latent", "kv"}, false,
                            "on MHA2MLA: the latent cache, or reconstructed K/V as the authors"}}};
      return schema;
    };
    MethodSchema hqq = quantizer("hqq", hqq_bits, hqq_axis, "0 | 1 (hqq's axis)");
    hqq.options.push_back({"optimize", Kind::kInteger, "0", zero_or_one, {}, false,
                           "half-quadratic zero-point optimisation (0: hqq 0.2.2's default, as "
                           "the authors ran it)"});
    auto budget = [] {
      return std::vector<OptionSchema>{
          {"budget", Kind::kReal, std::nullopt, open_ratio, {}, true,
           "kept fraction of the tokens, in (0, 1)"},
          {"tokens", Kind::kInteger, std::nullopt, positive, {}, true,
           "or a fixed number of kept tokens"}};
    };
    auto pruner = [&](std::string name, const char* sink, const char* recent_ratio,
                      std::vector<OptionSchema> extra) {
      MethodSchema schema{std::move(name), Role::kPruner, budget(), {"budget", "tokens"}};
      schema.options.push_back({"sink", Kind::kInteger, sink, non_negative, {}, false,
                                "first tokens never evicted"});
      schema.options.push_back({"recent", Kind::kInteger, "0", non_negative, {}, false,
                                "newest tokens never evicted"});
      schema.options.push_back({"recent_ratio", Kind::kReal, recent_ratio, fraction, {}, false,
                                "plus this fraction of the budget as recent window"});
      schema.options.push_back({"protect_image", Kind::kInteger, "0", zero_or_one, {}, false,
                                "never evict image tokens (0 | 1)"});
      for (auto& o : extra) schema.options.push_back(std::move(o));
      return schema;
    };
    MethodSchema streaming{"streaming_llm", Role::kPruner, budget(), {"budget", "tokens"}};
    streaming.options.push_back(
        {"sink", Kind::kInteger, "4", non_negative, {}, false, "attention-sink tokens kept"});
    return std::vector<MethodSchema>{
        {"full", Role::kFull, {}},
        {"mha2mla",
         Role::kConversion,
         {{"d_kv", Kind::kInteger, std::nullopt, positive, {}, true,
           "latent dims per KV head (eval: the converted model's)"},
          {"rope_dim", Kind::kInteger, "32", even_non_negative, {}, false,
           "RoPE dims kept per head"}}},
        quantizer("quanto", quanto_bits, quanto_axis, "0 | -1 (optimum-quanto's axis)"),
        hqq,
        pruner("h2o", "4", "0.1",
               {{"per_kv_head", Kind::kInteger, "1", zero_or_one, {}, false,
                 "one token set per KV head (EasyKV h2o_head) or per layer"},
                {"normalize", Kind::kInteger, "0", zero_or_one, {}, false,
                 "divide by the queries that saw each token (kvpress ObservedAttention)"}}),
        pruner("tova", "0", "0", {}),
        streaming,
    };
  }();
  return table;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& s : schemas()) names.push_back(s.name);
  return names;
}

const MethodSchema* find_schema(std::string_view name) {
  for (const auto& s : schemas()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(separator, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// The number `text` holds, or nullopt when it is not entirely one (integers: no fraction part).
std::optional<double> parse_number(std::string_view text, Kind kind) {
  if (kind == Kind::kWord) return std::nullopt;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (kind == Kind::kInteger) {
    int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || ptr != last) return std::nullopt;
    return static_cast<double>(value);
  }
  double value = 0;
  const auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last || !std::isfinite(value)) return std::nullopt;
  return value;
}

// Resolved numeric options of one validated spec (defaults filled in).
double option(const MethodSpec& spec, const std::string& key) {
  const MethodSchema* schema = find_schema(spec.name);
  MLAB_CHECK(schema != nullptr, unknown_name_message("method", spec.name, method_names()));
  for (const auto& o : schema->options) {
    if (o.key != key) continue;
    const auto it = spec.options.find(key);
    const std::string text = it != spec.options.end() ? it->second : o.default_value.value_or("");
    const auto value = parse_number(text, o.kind);
    MLAB_CHECK(value.has_value(), spec.name, " option ", key, ": '", text, "' is not a number");
    return *value;
  }
  MLAB_FAIL(spec.name, " has no option '", key, "'");
}

// Checks one parsed spec against its schema; `where` prefixes the messages.
void validate(const MethodSpec& spec, const std::string& where) {
  const MethodSchema* schema = find_schema(spec.name);
  MLAB_CHECK(schema != nullptr, where, unknown_name_message("method", spec.name, method_names()));
  std::vector<std::string> keys;
  for (const auto& o : schema->options) keys.push_back(o.key);
  for (const auto& [key, text] : spec.options) {
    MLAB_CHECK(std::find(keys.begin(), keys.end(), key) != keys.end(), where,
               keys.empty() ? spec.name + " takes no options (got '" + key + "')"
                            : unknown_name_message(spec.name + " option", key, keys));
  }
  if (!schema->one_of.empty()) {
    std::vector<std::string> given;
    for (const auto& k : schema->one_of)
      if (spec.options.count(k)) given.push_back(k);
    MLAB_CHECK(given.size() == 1, where, spec.name, " needs exactly one of ",
               join(schema->one_of, " | "), given.empty() ? "" : " (got " + join(given, " and ") + ")",
               ", e.g. ", spec.name, ":", schema->one_of.front(), "=0.5; options: ",
               method_options_help(spec.name));
  }
  for (const auto& o : schema->options) {
    const auto it = spec.options.find(o.key);
    if (it == spec.options.end()) {
      MLAB_CHECK(o.default_value.has_value() || o.optional, where, spec.name, " needs option ",
                 o.key, " (e.g. ", spec.name, ":", o.key, "=",
                 o.kind == Kind::kReal ? "0.5" : "64", ")");
      continue;
    }
    if (o.kind == Kind::kWord) {
      MLAB_CHECK(std::find(o.words.begin(), o.words.end(), it->second) != o.words.end(), where,
                 spec.name, " option ", o.key, "=", it->second, ": must be ",
                 join(o.words, " or "));
      continue;
    }
    const auto value = parse_number(it->second, o.kind);
    MLAB_CHECK(value.has_value(), where, spec.name, " option ", o.key, ": '", it->second,
               "' is not ", o.kind == Kind::kInteger ? "an integer" : "a number");
    const std::string problem = o.check ? o.check(*value) : "";
    MLAB_CHECK(problem.empty(), where, spec.name, " option ", o.key, "=", it->second, ": ",
               problem);
  }
}

// Checks the combination of methods (roles) of a stack of validated specs.
void validate_stack(const std::vector<MethodSpec>& stack, const std::string& where) {
  MLAB_CHECK(!stack.empty(), where, "no method");
  std::map<Role, std::vector<std::string>> by_role;
  for (const auto& spec : stack) by_role[find_schema(spec.name)->role].push_back(spec.name);
  MLAB_CHECK(by_role[Role::kFull].empty() || stack.size() == 1, where,
             "'full' (the unmodified cache) cannot be stacked; leave it out (e.g. "
             "'quanto:bits=4' quantizes the original cache)");
  const auto at_most_one = [&](Role role, const char* what) {
    const auto& names = by_role[role];
    MLAB_CHECK(names.size() <= 1, where, "at most one ", what, " per stack (got ",
               join(names, " and "), ")");
  };
  at_most_one(Role::kConversion, "mha2mla conversion");
  at_most_one(Role::kQuantizer, "quantizer (quanto | hqq)");
  at_most_one(Role::kPruner, "pruning method (h2o | tova | streaming_llm)");
  for (const auto& spec : stack) {
    const auto it = spec.options.find("target");
    MLAB_CHECK(it == spec.options.end() || it->second == "latent" || !by_role[Role::kConversion].empty(),
               where, spec.name, " option target=", it->second,
               " applies only when stacked on mha2mla (e.g. mha2mla+", spec.name, ":target=kv)");
  }
}

// Packed bytes per element of a `bits`-bit code: hqq packs 3-bit codes 10 to an int32
// (specs/baselines.md §3.5); the other widths pack 8/bits codes per byte.
double packed_bytes_per_element(int bits) { return bits == 3 ? 4.0 / 10.0 : bits / 8.0; }

}  // namespace

std::vector<MethodSpec> parse_method_stack(std::string_view spec) {
  const std::string where = "method spec '" + std::string(spec) + "': ";
  MLAB_CHECK(!trim(spec).empty(), where, "empty (e.g. 'full', 'mha2mla:d_kv=64+quanto:bits=4')");
  std::vector<MethodSpec> stack;
  const auto parts = split(spec, '+');
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string_view part = trim(parts[i]);
    MLAB_CHECK(!part.empty(), where, "part ", i + 1, " of ", parts.size(),
               " is empty (methods are joined by a single '+')");
    MethodSpec method;
    const size_t colon = part.find(':');
    method.name = std::string(trim(part.substr(0, colon)));
    MLAB_CHECK(!method.name.empty(), where, "part ", i + 1, " '", part, "' has no method name");
    MLAB_CHECK(find_schema(method.name) != nullptr, where,
               unknown_name_message("method", method.name, method_names()));
    if (colon != std::string_view::npos) {
      const std::string_view list = part.substr(colon + 1);
      MLAB_CHECK(!trim(list).empty(), where, method.name,
                 ": no options after ':' (write key=value pairs or drop the ':')");
      for (const std::string_view item_raw : split(list, ',')) {
        const std::string_view item = trim(item_raw);
        MLAB_CHECK(!item.empty(), where, method.name, ": empty option in '", list, "'");
        const size_t eq = item.find('=');
        MLAB_CHECK(eq != std::string_view::npos, where, method.name, ": option '", item,
                   "' is not key=value");
        const std::string key(trim(item.substr(0, eq)));
        const std::string value(trim(item.substr(eq + 1)));
        MLAB_CHECK(!key.empty(), where, method.name, ": option '", item, "' has no key");
        MLAB_CHECK(!value.empty(), where, method.name, " option ", key, ": no value");
        MLAB_CHECK(method.options.emplace(key, value).second, where, method.name, " option ", key,
                   " is given twice");
      }
    }
    validate(method, where);
    stack.push_back(std::move(method));
  }
  validate_stack(stack, where);
  return stack;
}

std::string format_method_stack(const std::vector<MethodSpec>& stack) {
  std::vector<std::string> parts;
  for (const auto& spec : stack) {
    const MethodSchema* schema = find_schema(spec.name);
    MLAB_CHECK(schema != nullptr, unknown_name_message("method", spec.name, method_names()));
    std::vector<std::string> items;
    for (const auto& o : schema->options) {
      const auto it = spec.options.find(o.key);
      if (it != spec.options.end()) {
        items.push_back(o.key + "=" + it->second);
      } else if (o.default_value) {
        items.push_back(o.key + "=" + *o.default_value);
      }
    }
    parts.push_back(items.empty() ? spec.name : spec.name + ":" + join(items, ","));
  }
  return join(parts, "+");
}

KvMemory kv_memory(const models::ModelConfig& config, const std::vector<MethodSpec>& stack,
                   int64_t tokens, int bits_of_base_dtype, int64_t prefill_tokens) {
  const std::string where = "method '" + format_method_stack(stack) + "': ";
  for (const auto& spec : stack) validate(spec, where);
  validate_stack(stack, where);
  MLAB_CHECK(tokens > 0, "kv_memory: tokens must be > 0 (got ", tokens, ")");
  MLAB_CHECK(prefill_tokens <= tokens, "kv_memory: prefill tokens (", prefill_tokens,
             ") exceed the tokens (", tokens, ")");
  MLAB_CHECK(bits_of_base_dtype == 8 || bits_of_base_dtype == 16 || bits_of_base_dtype == 32,
             "kv_memory: base dtype bits must be 8, 16 or 32 (got ", bits_of_base_dtype, ")");

  KvMemory m;
  m.layers = config.text.num_hidden_layers;
  m.num_heads = config.text.num_attention_heads;
  m.num_kv_heads = config.text.num_key_value_heads;
  m.head_dim = config.text.head_dim;
  m.base_bits = bits_of_base_dtype;
  m.tokens = tokens;
  const double base_bytes = bits_of_base_dtype / 8.0;

  m.elements_original = 2 * m.num_kv_heads * m.head_dim;
  m.elements_mha = 2 * m.num_heads * m.head_dim;
  m.elements = m.elements_original;
  // Elements of a token that a quantizer packs; the rest stay in the base dtype.
  int64_t quantizable = m.elements_original;
  bool target_kv = false;  // mha2mla + quantizer target=kv: reconstructed K/V are cached
  bool quanto_rows = false;  // Quanto axis 0 packs along its group rows (padded to 8/b rows)
  int64_t kept_fixed = 0;  // pruning with tokens=N

  for (const auto& spec : stack) {
    const Role role = find_schema(spec.name)->role;
    if (role == Role::kConversion) {
      MLAB_CHECK(spec.options.count("d_kv") > 0, where,
                 "mha2mla needs d_kv here (the latent dims per KV head), e.g. mha2mla:d_kv=64");
      m.d_kv = static_cast<int64_t>(option(spec, "d_kv"));
      m.rope_dim = static_cast<int64_t>(option(spec, "rope_dim"));
      MLAB_CHECK(m.rope_dim <= m.head_dim, where, "rope_dim=", m.rope_dim,
                 " exceeds this model's head_dim ", m.head_dim, "; pass a smaller rope_dim");
      const int64_t bound = 2 * m.head_dim - m.rope_dim;
      MLAB_CHECK(m.d_kv <= bound, where, "d_kv=", m.d_kv,
                 " exceeds 2*head_dim - rope_dim = ", bound,
                 " (the rank of the non-RoPE key and value per kv head; head_dim ", m.head_dim,
                 ", rope_dim ", m.rope_dim, ")");
      // E_MLA = n_kv·(r + d_kv): the latent c (n_kv·d_kv) and the RoPE key (n_kv·r).
      m.elements = m.num_kv_heads * (m.rope_dim + m.d_kv);
    } else if (role == Role::kQuantizer) {
      m.quant_bits = static_cast<int>(option(spec, "bits"));
      m.group = static_cast<int64_t>(option(spec, "group"));
      m.residual = static_cast<int64_t>(option(spec, "residual"));
      m.quantize_rope = option(spec, "quantize_rope") != 0;
      const auto t = spec.options.find("target");
      target_kv = t != spec.options.end() && t->second == "kv";
      quanto_rows = spec.name == "quanto" && option(spec, "axis_key") == 0 &&
                    option(spec, "axis_value") == 0;
    } else if (role == Role::kPruner) {
      // The budget is the kept fraction of the tokens (EasyKV's ratio budget, specs/baselines.md
      // §1.3): budget=0.5 keeps half of them, so every byte count scales by it; tokens=N keeps N.
      if (spec.options.count("budget")) {
        m.keep_ratio = option(spec, "budget");
      } else {
        kept_fixed = static_cast<int64_t>(option(spec, "tokens"));
      }
    }
  }
  if (target_kv) {
    // The authors' MLA + Int4: the cache holds the reconstructed K/V (specs/baselines.md §1.5-5).
    m.elements = m.elements_original;
  } else if (m.d_kv > 0) {
    // Stacked on MLA, the quantizer packs the latent c; the RoPE key stays in the base dtype
    // unless quantize_rope (specs/baselines.md §6.2).
    quantizable = m.quantize_rope ? m.elements : m.num_kv_heads * m.d_kv;
  }

  // EasyKV keeps int(N·budget) tokens (plus its stride, ignored here).
  m.kept_tokens = static_cast<int64_t>(std::floor(static_cast<double>(tokens) * m.keep_ratio));
  if (kept_fixed > 0) {
    m.kept_tokens = std::min(tokens, kept_fixed);
    m.keep_ratio = static_cast<double>(m.kept_tokens) / static_cast<double>(tokens);
  }

  const double nominal_bits = m.quant_bits > 0 ? m.quant_bits : bits_of_base_dtype;
  m.bytes_original = static_cast<double>(m.elements_original) * base_bytes;
  m.bytes_mha = static_cast<double>(m.elements_mha) * base_bytes;
  m.bytes_nominal = static_cast<double>(m.elements) * nominal_bits / 8.0 * m.keep_ratio;

  // Real bytes of one token per layer, in the base dtype and quantized.
  const double full_token = static_cast<double>(m.elements) * base_bytes;
  double per_layer = static_cast<double>(m.kept_tokens) * full_token;
  if (m.quant_bits > 0) {
    const double q = static_cast<double>(quantizable);
    // Packed codes plus one scale and one zero-point per group (amortised over the group;
    // specs/baselines.md §2.5: N·b/8 + (N/G)·(2+2) bytes for N elements). Both are stored in the
    // KV dtype: Quanto's scale/shift are the input's dtype, and HQQ's meta is cast to
    // compute_dtype, which transformers sets to the cache's dtype (bf16 in the paper's runs).
    const double quant_token = q * packed_bytes_per_element(m.quant_bits) +
                               q / static_cast<double>(m.group) * (2 * base_bytes) +
                               static_cast<double>(m.elements - quantizable) * base_bytes;
    // The newest min(N, residual) tokens stay in the base dtype. NOTE(kv_memory): transformers'
    // QuantizedCache holds 0..residual-1 tokens there (0 right after the prefill), so this is
    // the upper bound of the window, not its value at every step (specs/baselines.md §2.4).
    m.residual_tokens = std::min(m.kept_tokens, m.residual);
    if (prefill_tokens > 0) {
      // The schedule itself: the prefill is quantized at once, decode step j leaves j mod R
      // tokens in the residual (re-quantization at every R-th step; specs/baselines.md §2.4).
      const int64_t steps = tokens - prefill_tokens;
      m.residual_tokens = m.residual > 0 ? std::min(m.kept_tokens, steps % m.residual) : 0;
    }
    per_layer = static_cast<double>(m.residual_tokens) * full_token +
                static_cast<double>(m.kept_tokens - m.residual_tokens) * quant_token;
    if (prefill_tokens > 0) {
      // Exact bytes of the quantized tensors of one sequence: Quanto (axis 0) packs 8/b group
      // rows per byte row and pads the last one (optimum-quanto PackedTensor.pack).
      const int64_t n = m.kept_tokens - m.residual_tokens;
      std::vector<int64_t> per_token;  // elements per token of each quantized tensor
      if (m.d_kv > 0 && !target_kv) {
        per_token.push_back(m.num_kv_heads * m.d_kv);
        if (m.quantize_rope) per_token.push_back(m.num_kv_heads * m.rope_dim);
      } else {
        per_token = {m.num_kv_heads * m.head_dim, m.num_kv_heads * m.head_dim};
      }
      double quant_bytes = 0;
      for (const int64_t e : per_token) {
        const double rows = static_cast<double>(n * e) / static_cast<double>(m.group);
        const double per_byte = 8.0 / m.quant_bits;
        const double packed = quanto_rows && m.quant_bits != 3
                                  ? std::ceil(rows / per_byte) * static_cast<double>(m.group)
                                  : static_cast<double>(n * e) * packed_bytes_per_element(m.quant_bits);
        quant_bytes += packed + rows * 2 * base_bytes;
      }
      per_layer = static_cast<double>(m.residual_tokens) * full_token + quant_bytes +
                  static_cast<double>(n * (m.elements - quantizable)) * base_bytes;
    }
  }

  const double layer_tokens = static_cast<double>(m.layers) * static_cast<double>(tokens);
  m.total_bytes_original = m.bytes_original * layer_tokens;
  m.total_bytes_mha = m.bytes_mha * layer_tokens;
  m.total_bytes_nominal = m.bytes_nominal * layer_tokens;
  m.total_bytes_real = per_layer * static_cast<double>(m.layers);
  m.bytes_real = per_layer / static_cast<double>(tokens);

  m.vs_original = m.bytes_nominal / m.bytes_original - 1.0;
  m.vs_mha_equivalent = m.bytes_nominal / m.bytes_mha - 1.0;
  m.real_vs_original = m.bytes_real / m.bytes_original - 1.0;
  m.real_vs_mha_equivalent = m.bytes_real / m.bytes_mha - 1.0;
  return m;
}

std::string method_options_help(std::string_view name) {
  const MethodSchema* schema = find_schema(name);
  if (schema == nullptr || schema->options.empty()) return "";
  std::vector<std::string> items;
  for (const auto& o : schema->options) {
    std::string item = o.key;
    if (o.default_value) item += "=" + *o.default_value;
    if (!o.default_value && !o.optional) item += " (required)";
    if (!o.doc.empty()) item += " [" + o.doc + "]";
    items.push_back(item);
  }
  std::string text = "options: " + join(items, ", ");
  if (!schema->one_of.empty()) text += "; exactly one of " + join(schema->one_of, " | ");
  return text;
}

std::vector<std::string> spec_method_names() { return method_names(); }

std::string format_percent(double fraction) {
  // std::round rounds halves away from zero; the paper's ties (−84.375%, −90.625%) are exact
  // binary fractions, so fraction·10000 lands on them exactly.
  const double hundredths = std::round(fraction * 10000.0);
  if (hundredths == 0) return "0.00%";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%+.2f%%", hundredths / 100.0);
  return buffer;
}

nlohmann::json kv_memory_json(const KvMemory& m) {
  nlohmann::json method = {{"d_kv", m.d_kv},
                           {"rope_dim", m.rope_dim},
                           {"quant_bits", m.quant_bits},
                           {"group", m.group},
                           {"residual", m.residual},
                           {"quantize_rope", m.quantize_rope},
                           {"keep_ratio", m.keep_ratio}};
  return {
      {"model",
       {{"layers", m.layers},
        {"num_attention_heads", m.num_heads},
        {"num_key_value_heads", m.num_kv_heads},
        {"head_dim", m.head_dim},
        {"base_bits", m.base_bits}}},
      {"parameters", method},
      {"tokens", m.tokens},
      {"kept_tokens", m.kept_tokens},
      {"residual_tokens", m.residual_tokens},
      {"per_token_per_layer",
       {{"elements_original", m.elements_original},
        {"elements_mha_equivalent", m.elements_mha},
        {"elements", m.elements},
        {"bytes_original", m.bytes_original},
        {"bytes_mha_equivalent", m.bytes_mha},
        {"bytes_nominal", m.bytes_nominal},
        {"bytes_real", m.bytes_real}}},
      {"total",
       {{"bytes_original", m.total_bytes_original},
        {"bytes_mha_equivalent", m.total_bytes_mha},
        {"bytes_nominal", m.total_bytes_nominal},
        {"bytes_real", m.total_bytes_real}}},
      {"change",
       {{"nominal_vs_original", m.vs_original},
        {"nominal_vs_mha_equivalent", m.vs_mha_equivalent},
        {"real_vs_original", m.real_vs_original},
        {"real_vs_mha_equivalent", m.real_vs_mha_equivalent}}},
      {"change_percent",
       {{"nominal_vs_original", format_percent(m.vs_original)},
        {"nominal_vs_mha_equivalent", format_percent(m.vs_mha_equivalent)},
        {"real_vs_original", format_percent(m.real_vs_original)},
        {"real_vs_mha_equivalent", format_percent(m.real_vs_mha_equivalent)}}},
  };
}

}  // namespace mlab::methods
