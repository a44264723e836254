#include "training/train_checkpoint.hpp"

#include <ATen/ATen.h>

#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "core/error.hpp"
#include "models/config/model_config.hpp"
#include "models/io/checkpoint.hpp"
#include "models/io/tensor_io.hpp"
#include "models/nn/weights.hpp"

namespace mlab::training {
namespace {

namespace fs = std::filesystem;

bool is_weight_file(const std::string& name) {
  return name == "model.safetensors" || name == "model.safetensors.index.json" ||
         (name.rfind("model-", 0) == 0 && name.ends_with(".safetensors"));
}

bool is_state_file(const std::string& name) { return name.rfind("trainer_state.", 0) == 0; }

}  // namespace

// Removes `dir` and everything below it (no-op when absent). Not std::filesystem::remove_all:
// libtorch.so exports its own copy of that symbol, which the binary binds to, and it crashes
// (a call through a null pointer) on a non-empty directory such as the .checkpoint-N.tmp a
// killed run leaves behind (seen on resume after SIGKILL).
void remove_tree(const fs::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return;
  const int rc = ::nftw(
      dir.c_str(),
      [](const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }, 16,
      FTW_DEPTH | FTW_PHYS);
  MLAB_CHECK(rc == 0, dir.string(), ": cannot remove (", std::strerror(errno), ")");
}

fs::path save_train_checkpoint(const fs::path& out, const fs::path& source, const Trainer& trainer,
                               nlohmann::json state) {
  const int64_t step = trainer.steps_done();
  const fs::path final_dir = out / ("checkpoint-" + std::to_string(step));
  const fs::path tmp = out / (".checkpoint-" + std::to_string(step) + ".tmp");
  remove_tree(tmp);
  fs::create_directories(tmp);
  for (const auto& e : fs::directory_iterator(source)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || is_weight_file(name) || is_state_file(name)) continue;
    fs::copy_file(e.path(), tmp / name);
  }
  // The source's tensors, in its names and dtypes, the trained ones replaced.
  // Mixed precision: the f32 masters, not their rounded copies in the model.
  std::map<std::string, at::Tensor> trained;
  const auto& masters = trainer.master_parameters();
  for (std::size_t i = 0; i < masters.size(); ++i) {
    trained[trainer.trainable_parameters()[i].first] = masters[i].detach();
  }
  const auto file = models::Checkpoint::open(source);
  // The family: from config.json (the model's).
  const auto family = models::load_model_config(source).family;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::size_t replaced = 0;
  for (const auto& name : file.names()) {
    at::Tensor stored = file.get(name);
    const auto it = trained.find(models::canonical_weight_name(family, name));
    if (it != trained.end()) {
      stored = it->second.reshape(stored.sizes()).to(at::kCPU, stored.scalar_type()).contiguous();
      ++replaced;
    }
    tensors.emplace_back(name, stored);
  }
  MLAB_CHECK(replaced == trained.size(), source.string(), ": ", trained.size() - replaced,
             " trained parameter(s) have no tensor in the source checkpoint");
  models::save_checkpoint(tmp, tensors, {{"format", "pt"}});
  // Optimizer state.
  std::vector<std::pair<std::string, at::Tensor>> moments;
  nlohmann::json adamw_steps = nlohmann::json::array();
  const auto& st = trainer.optimizer().state();
  for (std::size_t i = 0; i < st.size(); ++i) {
    const std::string& name = trainer.trainable_parameters()[i].first;
    adamw_steps.push_back(st[i].step);
    if (!st[i].exp_avg.defined()) continue;
    moments.emplace_back("exp_avg." + name, st[i].exp_avg.to(at::kCPU).contiguous());
    moments.emplace_back("exp_avg_sq." + name, st[i].exp_avg_sq.to(at::kCPU).contiguous());
  }
  // The masters again, exactly: model.safetensors holds them in the source's dtype.
  if (trainer.mixed_precision()) {
    for (std::size_t i = 0; i < masters.size(); ++i) {
      moments.emplace_back("master." + trainer.trainable_parameters()[i].first,
                           masters[i].detach().to(at::kCPU).contiguous());
    }
  }
  models::save_safetensors(tmp / "trainer_state.safetensors", moments);
  state["step"] = step;
  state["adamw_steps"] = adamw_steps;
  {
    std::ofstream o(tmp / "trainer_state.json");
    o << state.dump(2) << "\n";
    MLAB_CHECK(o.good(), (tmp / "trainer_state.json").string(), ": write failed");
  }
  remove_tree(final_dir);
  fs::rename(tmp, final_dir);
  return final_dir;
}

std::optional<fs::path> latest_train_checkpoint(const fs::path& out) {
  std::optional<fs::path> best;
  int64_t best_step = -1;
  if (!fs::is_directory(out)) return best;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("checkpoint-", 0) != 0) continue;
    if (!fs::exists(e.path() / "trainer_state.json")) continue;
    try {
      const int64_t step = std::stoll(name.substr(11));
      if (step > best_step) best_step = step, best = e.path();
    } catch (const std::exception&) {
    }
  }
  return best;
}

nlohmann::json load_train_state(const fs::path& dir, Trainer& trainer) {
  std::ifstream in(dir / "trainer_state.json");
  MLAB_CHECK(in.good(), (dir / "trainer_state.json").string(), ": cannot open");
  const auto state = nlohmann::json::parse(in);
  const auto moments = models::Checkpoint::open(dir / "trainer_state.safetensors");
  const auto& params = trainer.trainable_parameters();
  const auto& steps = state.at("adamw_steps");
  MLAB_CHECK(steps.size() == params.size(), dir.string(), ": the state has ", steps.size(),
             " parameters, the run trains ", params.size());
  std::vector<AdamW::State> loaded(params.size());
  std::set<std::string> names(moments.names().begin(), moments.names().end());
  if (trainer.mixed_precision()) {
    std::vector<at::Tensor> masters;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const std::string key = "master." + params[i].first;
      // A checkpoint of an f32 run: its model.safetensors (loaded) holds the masters.
      if (names.count(key) == 0) {
        masters.push_back(trainer.master_parameters()[i].detach().clone());
        continue;
      }
      masters.push_back(moments.get(key).to(params[i].second.device(), at::kFloat));
    }
    trainer.load_master_parameters(masters);
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].first;
    loaded[i].step = steps[i].get<int64_t>();
    if (names.count("exp_avg." + name) == 0) continue;
    const auto& p = trainer.master_parameters()[i];
    loaded[i].exp_avg = moments.get("exp_avg." + name).to(p.device(), p.scalar_type()).clone();
    loaded[i].exp_avg_sq = moments.get("exp_avg_sq." + name).to(p.device(), p.scalar_type()).clone();
  }
  trainer.optimizer().load_state(std::move(loaded));
  trainer.set_steps_done(state.at("step").get<int64_t>());
  return state;
}

}  // namespace mlab::training
