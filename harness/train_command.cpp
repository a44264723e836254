// mla-bench train: MHA2MLA-VLM's two fine-tuning stages (issue F8). This slice implements
// --dry-run: each stage's trainable parameter sets from a model config (training/trainable.hpp),
// beside the paper's Appendix A Tables 5-6 "#Param." (configs/paper/trainable_params.json).
// Without --dry-run: the trainer (harness/train_run.cpp).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "harness/commands.hpp"
#include "models/config/model_config.hpp"
#include "training/trainable.hpp"

namespace mlab::harness {
namespace {

namespace fs = std::filesystem;

// 1234567 -> "1,234,567".
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string format(const char* fmt, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, fmt, value);
  return buffer;
}

// The paper's way of writing a count and share: "1497.64M (21.20%)".
std::string paper_style(int64_t parameters, double share) {
  return format("%.2fM", static_cast<double>(parameters) / 1e6) + " (" +
         format("%.2f%%", 100.0 * share) + ")";
}

// The paper's model entry of configs/paper/trainable_params.json whose "match" fits the config.
std::optional<nlohmann::json> paper_model(const nlohmann::json& paper,
                                          const models::ModelConfig& config) {
  if (paper.is_null()) return std::nullopt;
  const auto& t = config.text;
  for (const auto& m : paper.at("models")) {
    const auto& match = m.at("match");
    if (match.at("model_type") == models::family_name(config.family) &&
        match.at("hidden_size") == t.hidden_size &&
        match.at("num_hidden_layers") == t.num_hidden_layers &&
        match.at("num_key_value_heads") == t.num_key_value_heads &&
        match.at("vocab_size") == t.vocab_size) {
      return m;
    }
  }
  return std::nullopt;
}

// The paper's "#Param." for one stage of `model` ({"table", "printed", "parameters_m",
// "share_percent"}), or a sentence saying why there is none.
nlohmann::json paper_stage(const nlohmann::json& model, const training::TrainableOptions& o,
                           bool authors_settings) {
  if (!authors_settings) {
    return "the paper counts the authors' settings only (peft_train v4 / v2, vision tower frozen, "
           "projector trained)";
  }
  if (model.at("rope_dim") != o.rope_dim) {
    return "the paper counts rope_dim " + model.at("rope_dim").dump() + " only";
  }
  if (o.stage == 1) {
    nlohmann::json e = model.at("stage1");
    e["table"] = 5;
    return e;
  }
  std::string known;
  for (const auto& s : model.at("stage2")) {
    if (s.at("d_kv") == o.d_kv) {
      nlohmann::json e = s;
      e["table"] = 6;
      return e;
    }
    known += (known.empty() ? "" : ", ") + s.at("d_kv").dump();
  }
  return "the paper has no row for d_kv " + std::to_string(o.d_kv) + " (it has " + known + ")";
}

std::string without_spaces(std::string s) {
  std::erase(s, ' ');
  return s;
}

std::string stage_title(const training::TrainableOptions& o) {
  std::string s = o.stage == 0   ? std::string("stage 0: the unconverted model (all parameters)")
                  : o.stage == 1 ? "stage 1: partial RoPE (r = " + std::to_string(o.rope_dim) + ")"
                                 : "stage 2: MLA (r = " + std::to_string(o.rope_dim) +
                                       ", d_kv = " + std::to_string(o.d_kv) + ")";
  s += "; peft_train " + std::string(training::peft_version_name(*o.peft));
  s += o.freeze_vit ? "; vision tower frozen" : "; vision tower trained";
  s += o.freeze_aligner ? "; projector frozen" : "; projector trained";
  return s;
}

void print_stage(const training::TrainableSet& set, const nlohmann::json& paper,
                 bool list_parameters, std::ostream& out) {
  const double total = static_cast<double>(set.total_parameters());
  out << stage_title(set.options()) << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-22s %8s %16s %8s  %s\n", "group", "tensors", "parameters",
                "share", "trained");
  out << line;
  for (const auto& g : set.groups()) {
    std::string trained = g.trainable_parameters == 0 ? "no"
                          : g.trainable_parameters == g.parameters
                              ? "yes"
                              : "partly: " + grouped(g.trainable_parameters);
    std::snprintf(line, sizeof line, "  %-22s %8lld %16s %7.2f%%  %s\n", g.name.c_str(),
                  static_cast<long long>(g.tensors), grouped(g.parameters).c_str(),
                  100.0 * static_cast<double>(g.parameters) / total, trained.c_str());
    out << line;
  }
  const std::string ours = paper_style(set.trainable_parameters(), set.trainable_share());
  out << "  trainable: " << grouped(set.trainable_parameters()) << " of "
      << grouped(set.total_parameters()) << " parameters = " << ours << "\n";
  if (paper.is_object()) {
    out << "  paper, Table " << paper.at("table").get<int>()
        << " #Param.: " << paper.at("printed").get<std::string>()
        << (paper.at("same_as_ours").get<bool>()         ? " (the same)"
            : paper.at("same_to_last_digit").get<bool>() ? " (the same count up to the last digit)"
                                                         : " (differs from ours)")
        << "\n";
  } else if (paper.is_string()) {
    out << "  paper: " << paper.get<std::string>() << "\n";
  }
  if (list_parameters) {
    for (const auto& p : set.parameters()) {
      std::string shape = "[";
      for (size_t i = 0; i < p.shape.size(); ++i)
        shape += (i ? ", " : "") + std::to_string(p.shape[i]);
      shape += "]";
      out << "    " << (p.trainable ? "T " : "- ") << p.name << " " << shape << "\n";
    }
  }
  out << "\n";
}

nlohmann::json load_paper(const fs::path& path) {
  if (path.empty() || !fs::exists(path)) return nullptr;
  std::ifstream in(path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": " + e.what());
  }
}

}  // namespace

int run_train(const TrainOptions& options, std::ostream& out) {
  if (!options.dry_run) return run_training(options, out);
  const fs::path config_path = !options.model_config.empty() ? options.model_config : options.model;
  if (config_path.empty()) {
    throw UsageError("mla-bench train --dry-run: give --model-config FILE_OR_DIR (or --model DIR)");
  }
  std::optional<training::PeftVersion> peft;
  if (!options.peft.empty()) {
    try {
      peft = training::parse_peft_version(options.peft);
    } catch (const Error& e) {
      throw UsageError(std::string("mla-bench train: --peft: ") + e.what());
    }
    if (options.stage < 0) {
      throw UsageError("mla-bench train: --peft applies to one stage: give --stage 1 or 2");
    }
  }
  const models::ModelConfig config = models::load_model_config(config_path);
  const nlohmann::json paper = load_paper(options.paper_params);
  const std::optional<nlohmann::json> model = paper_model(paper, config);

  training::TrainableOptions unconverted;
  unconverted.stage = 0;
  const int64_t original = training::TrainableSet::build(config, unconverted).total_parameters();
  std::vector<int> stages =
      options.stage < 0 ? std::vector<int>{1, 2} : std::vector<int>{options.stage};
  const bool swift_defaults = !options.freeze_aligner && !options.train_vision;

  nlohmann::json report = {{"model_config", config_path.string()},
                           {"model_type", std::string(models::family_name(config.family))},
                           {"original_parameters", original},
                           {"stages", nlohmann::json::array()}};
  const auto& t = config.text;
  if (!options.json) {
    out << "model config: " << config_path.string() << " (" << models::family_name(config.family)
        << "): " << t.num_hidden_layers << " layers, hidden " << t.hidden_size << ", "
        << t.num_attention_heads << " heads / " << t.num_key_value_heads << " KV heads, head_dim "
        << t.head_dim << "\n";
    out << "unconverted model: " << grouped(original) << " parameters\n\n";
  }
  for (int stage : stages) {
    training::TrainableOptions o{.stage = stage,
                                 .peft = peft,
                                 .rope_dim = options.rope_dims,
                                 .d_kv = options.d_kv,
                                 .freeze_vit = training::freeze_vit_for_stage(
                                     stage, options.train_vision, options.freeze_vision),
                                 .freeze_aligner = options.freeze_aligner};
    const training::TrainableSet set = training::TrainableSet::build(config, o);
    const bool authors =
        swift_defaults && *set.options().peft == training::default_peft_version(stage);
    nlohmann::json j = set.to_json(options.list_parameters);
    const std::string ours = paper_style(set.trainable_parameters(), set.trainable_share());
    j["paper_style"] = ours;
    j["paper"] = nullptr;
    if (model && stage == 0) {
      j["paper"] = "the paper trains converted models only (stages 1 and 2)";
    } else if (model) {
      j["paper"] = paper_stage(*model, set.options(), authors);
      if (j["paper"].is_object()) {
        auto& e = j["paper"];
        e["same_as_ours"] =
            without_spaces(e.at("printed").get<std::string>()) == without_spaces(ours);
        // One unit in the paper's last digit (it prints 841.32M where swift's 841.3263M rounds
        // to 841.33M): the same count, rounded differently.
        e["same_to_last_digit"] =
            std::abs(e.at("parameters_m").get<double>() -
                     static_cast<double>(set.trainable_parameters()) / 1e6) < 0.01 &&
            std::abs(e.at("share_percent").get<double>() - 100.0 * set.trainable_share()) < 0.01;
      }
    }
    if (!options.json) {
      print_stage(set, j["paper"], options.list_parameters, out);
    }
    report["stages"].push_back(std::move(j));
  }
  if (!paper.is_null() && paper.contains("claims")) report["paper_claims"] = paper.at("claims");
  if (options.json) {
    out << report.dump(2) << "\n";
  } else if (!paper.is_null()) {
    out << "The paper (§4): \"" << paper.at("claims").at(0).get<std::string>() << "\"\n"
        << "Its Tables 5-6 count what the authors' code trains (specs/method.md §6.1): stage 1 "
           "also V, the norms and the projector; stage 2 also q_proj, o_proj, the norms and the "
           "projector; LLaVA-NeXT's image_newline in both.\n";
  }
  return 0;
}

}  // namespace mlab::harness
