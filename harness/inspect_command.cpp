// mla-bench inspect PATH: what a Hugging Face model directory, checkpoint or config.json holds.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <ostream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "harness/commands.hpp"
#include "models/config/model_config.hpp"
#include "models/io/checkpoint.hpp"

namespace mlab::harness {
namespace {

namespace fs = std::filesystem;

bool has_weights(const fs::path& dir) {
  return fs::exists(dir / "model.safetensors") || fs::exists(dir / "model.safetensors.index.json");
}

nlohmann::json config_summary(const models::ModelConfig& config) {
  const auto& t = config.text;
  return {{"family", std::string(models::family_name(config.family))},
          {"layers", t.num_hidden_layers},
          {"hidden_size", t.hidden_size},
          {"heads", t.num_attention_heads},
          {"kv_heads", t.num_key_value_heads},
          {"head_dim", t.head_dim},
          {"intermediate_size", t.intermediate_size},
          {"vocab_size", t.vocab_size},
          {"rope_theta", t.rope.theta},
          {"image_token_id", config.image_token_id}};
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

int run_inspect(const InspectOptions& options, std::ostream& out) {
  const fs::path& path = options.path;
  MLAB_CHECK(fs::exists(path), path.string(), ": no such file or directory");
  nlohmann::json report = {{"path", path.string()}};

  const bool is_config = path.extension() == ".json" && path.filename() != "model.safetensors.index.json";
  const fs::path config_path = fs::is_directory(path) ? path / "config.json" : path;
  if (is_config || (fs::is_directory(path) && fs::exists(config_path))) {
    report["config"] = config_summary(models::load_model_config(config_path));
  }
  if (!is_config && (!fs::is_directory(path) || has_weights(path))) {
    const auto checkpoint = models::Checkpoint::open(path);
    uint64_t total = 0;
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& name : checkpoint.names()) {
      const auto& info = checkpoint.info(name);
      total += info.end - info.begin;
      tensors.push_back({{"name", name},
                         {"dtype", std::string(models::dtype_name(info.dtype))},
                         {"shape", info.shape},
                         {"bytes", info.end - info.begin}});
    }
    report["checkpoint"] = {{"shards", checkpoint.shards().size()},
                            {"tensors", checkpoint.names().size()},
                            {"bytes", total},
                            {"metadata", checkpoint.metadata()}};
    report["tensors"] = tensors;
    if (options.check) {
      // Touch every byte of every tensor (catches I/O errors on truncated or sparse files).
      Progress progress(std::cerr, static_cast<int64_t>(checkpoint.names().size()),
                        {.label = "check", .unit = "tensors", .tty = Progress::is_terminal(2)});
      for (const auto& name : checkpoint.names()) {
        const auto t = checkpoint.get(name);
        if (t.numel() > 0 && t.is_floating_point()) (void)t.to(at::kFloat).sum().item<double>();
        progress.advance();
      }
      progress.finish();
      report["checked"] = true;
    }
  }
  MLAB_CHECK(report.contains("config") || report.contains("checkpoint"), path.string(),
             ": neither config.json nor safetensors weights found");

  if (options.json) {
    out << report.dump(2) << "\n";
    return 0;
  }
  out << path.string() << "\n";
  if (report.contains("config")) {
    const auto& c = report["config"];
    out << "  config: " << c["family"].get<std::string>() << ", " << c["layers"] << " layers, hidden "
        << c["hidden_size"] << ", heads " << c["heads"] << " / kv " << c["kv_heads"]
        << ", head_dim " << c["head_dim"] << ", vocab " << c["vocab_size"] << "\n";
  }
  if (report.contains("checkpoint")) {
    const auto& c = report["checkpoint"];
    char line[256];
    std::snprintf(line, sizeof(line), "  weights: %zu tensors in %zu shard(s), %.2f MB\n",
                  c["tensors"].get<size_t>(), c["shards"].get<size_t>(),
                  static_cast<double>(c["bytes"].get<uint64_t>()) / 1e6);
    out << line;
    for (const auto& t : report["tensors"]) {
      std::snprintf(line, sizeof(line), "    %-60s %-5s %-20s\n",
                    t["name"].get<std::string>().c_str(), t["dtype"].get<std::string>().c_str(),
                    shape_text(t["shape"].get<std::vector<int64_t>>()).c_str());
      out << line;
    }
  }
  return 0;
}

}  // namespace mlab::harness
