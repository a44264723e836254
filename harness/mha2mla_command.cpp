// `mla-bench mha2mla` (issue F8): the MHA2MLA-VLM pipeline of the paper (§3 and Appendix A;
// specs/method.md §1 and §6) as the authors run it, script by script:
//   stage1_init  partial RoPE (their patch_model in train_stage1.py)   = `convert --stage 1`
//   stage1       fine-tuning, peft v4 (train_stage1.py, cfgs/stage1.yaml) = `train --stage 1`
//   stage2_init  MD-SVD on the stage-1 model, calibrated on the training data (run_svd_init.py)
//                                                                      = `convert --stage 2 --svd
//                                                                      md`
//   stage2       fine-tuning, peft v2 (train_stage2.py, cfgs/stage2.yaml) = `train --stage 2`
// Each step writes one dir under --out and is recorded in OUT/pipeline.json when it finishes
// (inputs, outputs, timings, the held-out loss of its model); --resume skips finished steps and
// resumes an unfinished training step from its latest checkpoint (docs/training.md).
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/strings.hpp"
#include "harness/commands.hpp"
#include "models/config/model_config.hpp"
#include "models/runtime/vlm.hpp"
#include "training/evaluate_loss.hpp"
#include "training/train_checkpoint.hpp"
#include "training/train_data.hpp"

namespace mlab::harness {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::array<const char*, 4> kSteps = {"stage1_init", "stage1", "stage2_init", "stage2"};

// The authors' per-family settings (their cfgs/stage{1,2}.yaml: learning_rate, and the stage-2
// YAML comment "Recommended LR for different low_rank"; low_rank of the shipped stage2.yaml).
struct AuthorsDefaults {
  const char* family;
  int64_t d_kv;                           // their stage2.yaml low_rank
  double lr1;                             // their stage1.yaml learning_rate
  std::map<int64_t, double> lr2_by_d_kv;  // their stage2.yaml comment
};

const std::vector<AuthorsDefaults>& authors_defaults() {
  static const std::vector<AuthorsDefaults> table = {
      {"llava", 64, 5e-5, {{16, 1e-5}, {32, 5e-6}, {64, 1e-6}}},
      {"llava_next", 128, 5e-6, {{32, 5e-6}, {64, 1e-6}, {128, 8e-7}}},
      {"qwen2_5_vl", 128, 1e-5, {{32, 5e-5}, {64, 1e-5}, {128, 5e-6}}}};
  return table;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

void write_json_atomic(const fs::path& path, const json& j) {
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
  {
    std::ofstream o(tmp, std::ios::trunc);
    o << j.dump(2) << "\n";
    MLAB_CHECK(o.good(), tmp.string(), ": write failed");
  }
  fs::rename(tmp, path);
}

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  MLAB_CHECK(in.good(), path.string(), ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    MLAB_FAIL(path.string(), ": invalid JSON (", e.what(), ")");
  }
}

// The last line of a train_log.jsonl (the final step's record); null when there is none.
json last_log_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last.empty() ? json() : json::parse(last);
}

// Prepares a conversion written into `tmp` to live at `dir`: the authors' config dialect names
// the rank file and the stage-1 dir by absolute path (methods/mha2mla save_converted), which
// would still point into `tmp`, so every JSON file below `tmp` gets `dir` instead. A train
// checkpoint as source (stage 2 converts stage 1's last checkpoint) also left its
// trainer_state.json among the copied files; it describes the stage-1 run, not this dir.
void finalize_converted(const fs::path& tmp, const fs::path& dir) {
  const std::string from = fs::absolute(tmp).lexically_normal().string();
  const std::string to = fs::absolute(dir).lexically_normal().string();
  fs::remove(tmp / "trainer_state.json");
  for (const auto& e : fs::recursive_directory_iterator(tmp)) {
    if (!e.is_regular_file() || e.path().extension() != ".json") continue;
    std::string text;
    {
      std::ifstream in(e.path());
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    bool changed = false;
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
      text.replace(at, from.size(), to);
      changed = true;
    }
    if (changed) {
      std::ofstream o(e.path(), std::ios::trunc);
      o << text;
      MLAB_CHECK(o.good(), e.path().string(), ": write failed");
    }
  }
}

// The optimizer steps `mla-bench train` runs for the options (as harness/train_run.cpp computes
// T: --steps, else ceil(E * max(n // (batch * accum), 1))); only for the ETA.
int64_t planned_steps(int64_t steps, double epochs, int64_t records, int64_t per_step) {
  if (steps > 0) return steps;
  return static_cast<int64_t>(
      std::ceil(epochs * static_cast<double>(std::max<int64_t>(records / per_step, 1))));
}

class Pipeline {
 public:
  Pipeline(Mha2mlaOptions o, std::ostream& out) : o_(std::move(o)), out_(out) {}
  int run();

 private:
  json& record(const std::string& name);  // the step's record in state_["steps"] (added if new)
  bool done(const std::string& name) const;
  void save() { write_json_atomic(o_.out / "pipeline.json", state_); }
  std::optional<json> held_out(const fs::path& model_dir);
  void announce(std::size_t index, const std::string& what);
  void finish_line(std::size_t index, const json& rec);
  double eta() const;
  void convert_step(std::size_t index, const fs::path& source, int stage);
  void train_step(std::size_t index, const fs::path& model, int stage);

  Mha2mlaOptions o_;  // defaults resolved by run()
  std::ostream& out_;
  json state_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::string family_;
  int64_t d_kv_ = 0;
  double lr1_ = 0, lr2_ = 0;
  int64_t train_records_ = 0;
  std::vector<training::TrainRecord> eval_records_;
  training::TrainDataOptions data_options_;
};

json& Pipeline::record(const std::string& name) {
  for (auto& s : state_["steps"]) {
    if (s.at("name") == name) return s;
  }
  state_["steps"].push_back({{"name", name}, {"status", "running"}});
  return state_["steps"].back();
}

bool Pipeline::done(const std::string& name) const {
  for (const auto& s : state_.at("steps")) {
    if (s.at("name") == name) return s.value("status", std::string()) == "done";
  }
  return false;
}

std::optional<json> Pipeline::held_out(const fs::path& model_dir) {
  if (o_.eval_data.empty()) return std::nullopt;
  models::VlmOptions vo;
  vo.device = models::parse_device(o_.device);
  if (o_.dtype != "auto" && !o_.dtype.empty()) vo.dtype = models::parse_compute_dtype(o_.dtype);
  const auto model = models::Vlm::load(model_dir, vo);
  const auto loss = training::evaluate_loss(model, eval_records_, data_options_);
  for (const auto& s : loss.skipped) {
    out_ << "held-out: skipping record " << s.id << ": " << s.reason << "\n";
  }
  return json{{"loss", loss.loss},
              {"records", loss.records},
              {"supervised_tokens", loss.supervised},
              {"skipped", static_cast<int64_t>(loss.skipped.size())}};
}

void Pipeline::announce(std::size_t index, const std::string& what) {
  out_ << "mha2mla [" << index + 1 << "/" << kSteps.size() << "] " << kSteps[index] << ": " << what
       << "\n"
       << std::flush;
}

// The seconds the steps still to run will take, estimated from the finished ones: stage 2's
// conversion as long as stage 1's, stage 2's training at stage 1's seconds per optimizer step.
// Negative when nothing is known yet (format_duration prints "?").
double Pipeline::eta() const {
  auto seconds = [&](const char* name) -> std::optional<double> {
    for (const auto& s : state_.at("steps")) {
      if (s.at("name") == name && s.value("status", std::string()) == "done" &&
          s.contains("seconds") && s.at("seconds").is_number()) {
        return s.at("seconds").get<double>();
      }
    }
    return std::nullopt;
  };
  const int64_t per_step = o_.batch * o_.accum;
  const int64_t t1 = planned_steps(o_.stage1_steps, o_.stage1_epochs, train_records_, per_step);
  const int64_t t2 = planned_steps(o_.stage2_steps, o_.stage2_epochs, train_records_, per_step);
  double left = 0;
  bool known = true;
  for (const char* name : kSteps) {
    if (done(name)) continue;
    const std::string n = name;
    std::optional<double> est;
    if (n == "stage2_init") est = seconds("stage1_init");
    if (n == "stage2") {
      if (const auto s1 = seconds("stage1")) est = *s1 / std::max<int64_t>(t1, 1) * t2;
    }
    if (!est) known = false;
    left += est.value_or(0);
  }
  return known ? left : -1;
}

void Pipeline::finish_line(std::size_t index, const json& rec) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  out_ << "mha2mla [" << index + 1 << "/" << kSteps.size() << "] " << kSteps[index] << " done in "
       << format_duration(rec.value("seconds", 0.0));
  if (rec.contains("eval") && rec.at("eval").is_object()) {
    char b[64];
    std::snprintf(b, sizeof b, "%.6f", rec.at("eval").at("loss").get<double>());
    out_ << "; held-out loss " << b << " (" << rec.at("eval").at("records").get<int64_t>()
         << " records)";
  }
  out_ << "; pipeline elapsed " << format_duration(elapsed) << ", eta " << format_duration(eta())
       << "\n"
       << std::flush;
}

void Pipeline::convert_step(std::size_t index, const fs::path& source, int stage) {
  const std::string name = kSteps[index];
  const fs::path dir = o_.out / name;
  const fs::path tmp = o_.out / ("." + name + ".tmp");
  const bool scored = stage == 1 && o_.ranks.empty() && (o_.rope == "2norm" || o_.rope == "mkl");
  ConvertOptions c;
  c.model = source;
  c.out = tmp;
  c.stage = stage;
  c.rope = o_.rope;
  c.rope_dims = o_.rope_dims;
  c.ranks = o_.ranks;
  c.d_kv = d_kv_;
  c.svd = "md";
  // Stage 1 needs calibration only to score 2-norm / MKL keep-sets; stage 2 always (MD-SVD).
  if (stage == 2 || scored) {
    c.calib_data = o_.data;
    c.calib_image_root = o_.image_root;
  }
  c.calib_samples = o_.calib_samples;
  c.calib_seed = o_.calib_seed;
  c.mkl_samples = o_.mkl_samples;
  c.device = o_.device;
  c.report = o_.out / (name + "_report.json");
  std::string what =
      stage == 1
          ? "convert --stage 1 (partial RoPE: " + (o_.ranks.empty() ? o_.rope : o_.ranks.string()) +
                " r=" + std::to_string(o_.rope_dims) + ")"
          : "convert --stage 2 --svd md --d-kv " + std::to_string(d_kv_);
  if (!c.calib_data.empty()) {
    what += ", calibration: " +
            (o_.calib_samples > 0 ? "up to " + std::to_string(o_.calib_samples) : "all") +
            " records of " + o_.data.string() + " (seed " + std::to_string(o_.calib_seed) + ")";
  }
  announce(index, what + " -> " + dir.string());
  const auto t0 = std::chrono::steady_clock::now();
  training::remove_tree(tmp);
  const int rc = run_convert(c, out_);
  finalize_converted(tmp, dir);
  // The output is complete only once renamed: a killed conversion leaves only the .tmp dir.
  fs::rename(tmp, dir);
  json& rec = record(name);
  rec["command"] = "convert";
  rec["stage"] = stage;
  rec["input"] = source.string();
  rec["output"] = dir.string();
  rec["report"] = c.report.string();
  rec["calibration_data"] = c.calib_data.empty() ? json() : json(c.calib_data.string());
  if (stage == 2) {
    rec["d_kv"] = d_kv_;
    rec["theorem_2_1_holds"] = rc == 0;
    if (rc != 0) {
      out_ << "mha2mla: warning: " << name << ": a layer's MD-SVD loss exceeds the joint one "
           << "(Theorem 2.1; " << c.report.string() << "); continuing\n";
    }
  }
  rec["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (const auto e = held_out(dir)) rec["eval"] = *e;
  rec["status"] = "done";
  rec["finished_at"] = utc_now();
  save();
  finish_line(index, rec);
}

void Pipeline::train_step(std::size_t index, const fs::path& model, int stage) {
  const std::string name = kSteps[index];
  const fs::path dir = o_.out / name;
  TrainOptions t;
  t.model = model;
  t.stage = stage;
  t.data = o_.data;
  t.image_root = o_.image_root;
  t.out = dir;
  t.steps = stage == 1 ? o_.stage1_steps : o_.stage2_steps;
  t.epochs = stage == 1 ? o_.stage1_epochs : o_.stage2_epochs;
  t.lr = stage == 1 ? lr1_ : lr2_;
  t.batch = o_.batch;
  t.accum = o_.accum;
  t.seed = stage == 1 ? o_.seed : o_.stage2_seed;
  t.prompt_format = o_.prompt_format;
  t.save_every = o_.save_every;
  t.max_length = o_.max_length;
  t.device = o_.device;
  t.dtype = o_.dtype;
  // An unfinished training step of an earlier run continues from its latest checkpoint.
  t.resume = o_.resume && training::latest_train_checkpoint(dir).has_value();
  char lr[32], epochs[32];
  std::snprintf(lr, sizeof lr, "%g", t.lr);
  std::snprintf(epochs, sizeof epochs, "%g", t.epochs);
  announce(
      index,
      std::string("train --stage ") + std::to_string(stage) + " (" +
          (t.steps > 0 ? std::to_string(t.steps) + " steps" : std::string(epochs) + " epoch(s)") +
          ", peak lr " + lr + ", " + std::to_string(t.batch) + " x " + std::to_string(t.accum) +
          " samples per step" + (t.resume ? ", resuming from its latest checkpoint" : "") +
          ") -> " + dir.string());
  const auto t0 = std::chrono::steady_clock::now();
  run_training(t, out_);
  const auto checkpoint = training::latest_train_checkpoint(dir);
  MLAB_CHECK(checkpoint.has_value(), name, ": training wrote no checkpoint in ", dir.string());
  json& rec = record(name);
  rec["command"] = "train";
  rec["stage"] = stage;
  rec["input"] = model.string();
  rec["output"] = dir.string();
  rec["checkpoint"] = checkpoint->string();
  rec["lr"] = t.lr;
  rec["seed"] = t.seed;
  rec["steps"] = read_json_file(*checkpoint / "trainer_state.json").at("step");
  rec["final_train_loss"] = last_log_line(dir / "train_log.jsonl").value("loss", json());
  // The time of the run that finished the step (a resumed step: since the resume; a step is
  // recorded only once done, so an interrupted run's share is not known).
  rec["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rec["resumed"] = t.resume;
  if (const auto e = held_out(*checkpoint)) rec["eval"] = *e;
  rec["status"] = "done";
  rec["finished_at"] = utc_now();
  save();
  finish_line(index, rec);
}

int Pipeline::run() {
  const Mha2mlaOptions& o = o_;
  if (o.model.empty() || o.data.empty() || o.out.empty()) {
    throw UsageError("mla-bench mha2mla: give --model DIR, --data FILE.json and --out DIR");
  }
  if (o.stage1_steps > 0 && o.stage1_epochs > 0) {
    throw UsageError("mla-bench mha2mla: give --stage1-steps or --stage1-epochs, not both");
  }
  if (o.stage2_steps > 0 && o.stage2_epochs > 0) {
    throw UsageError("mla-bench mha2mla: give --stage2-steps or --stage2-epochs, not both");
  }
  if (o.stage1_steps < 0 || o.stage2_steps < 0 || o.stage1_epochs < 0 || o.stage2_epochs < 0) {
    throw UsageError("mla-bench mha2mla: steps and epochs must be >= 0");
  }
  if (o.batch < 1 || o.accum < 1) {
    throw UsageError("mla-bench mha2mla: --batch-size and --grad-accum must be >= 1");
  }
  if (o.lr1 < 0 || o.lr2 < 0) throw UsageError("mla-bench mha2mla: learning rates must be > 0");
  if (!o.stop_after_step.empty() &&
      std::find(kSteps.begin(), kSteps.end(), o.stop_after_step) == kSteps.end()) {
    throw UsageError(unknown_name_message("--stop-after-step", o.stop_after_step,
                                          {"stage1_init", "stage1", "stage2_init", "stage2"}));
  }
  // Absolute, so that the recorded paths and the converted configs' paths hold from any cwd (and
  // a --resume from another directory reads the same files).
  for (fs::path* p : {&o_.out, &o_.model, &o_.data, &o_.eval_data, &o_.image_root, &o_.ranks}) {
    if (!p->empty()) *p = fs::absolute(*p).lexically_normal();
  }
  // 1 epoch per stage when neither is given (the authors' num_train_epochs: 1).
  if (o_.stage1_steps == 0 && o_.stage1_epochs == 0) o_.stage1_epochs = 1;
  if (o_.stage2_steps == 0 && o_.stage2_epochs == 0) o_.stage2_epochs = 1;
  if (o.threads > 0) at::set_num_threads(o.threads);

  // The authors' defaults for the family where an option was left at 0.
  family_ = std::string(models::family_name(models::load_model_config(o.model).family));
  const AuthorsDefaults* authors = nullptr;
  for (const auto& a : authors_defaults()) {
    if (family_ == a.family) authors = &a;
  }
  MLAB_CHECK(authors != nullptr, "mha2mla: no defaults for family ", family_);
  d_kv_ = o.d_kv > 0 ? o.d_kv : authors->d_kv;
  lr1_ = o.lr1 > 0 ? o.lr1 : authors->lr1;
  lr2_ = o.lr2;
  if (lr2_ <= 0) {
    const auto it = authors->lr2_by_d_kv.find(d_kv_);
    if (it == authors->lr2_by_d_kv.end()) {
      std::string known;
      for (const auto& [d, lr] : authors->lr2_by_d_kv)
        known += (known.empty() ? "" : ", ") + std::to_string(d);
      throw UsageError("mla-bench mha2mla: the authors give stage-2 learning rates for " + family_ +
                       " at d_kv " + known + " only; give --lr2 for d_kv " + std::to_string(d_kv_));
    }
    lr2_ = it->second;
  }

  // The data once: its record count (ETA) and the held-out records.
  data_options_ = {.image_root = o.image_root, .max_length = o.max_length};
  data_options_.prompt = o.prompt_format;
  train_records_ =
      static_cast<int64_t>(training::read_train_data(o.data, data_options_).records.size());
  if (!o.eval_data.empty()) {
    training::TrainDataOptions eo{.image_root = o.image_root, .max_length = o.max_length};
    eo.prompt = o.prompt_format;
    auto eval = training::read_train_data(o.eval_data, eo);
    for (const auto& s : eval.skipped) {
      out_ << "held-out: skipping record " << s.id << ": " << s.reason << "\n";
    }
    MLAB_CHECK(!eval.records.empty(), o.eval_data.string(), ": no usable held-out record");
    eval_records_ = std::move(eval.records);
  }

  const json options = {{"model", o.model.string()},
                        {"data", o.data.string()},
                        {"eval_data", o.eval_data.string()},
                        {"image_root", o.image_root.string()},
                        {"family", family_},
                        {"rope", o.rope},
                        {"ranks", o.ranks.string()},
                        {"rope_dims", o.rope_dims},
                        {"d_kv", d_kv_},
                        {"stage1_steps", o.stage1_steps},
                        {"stage1_epochs", o.stage1_epochs},
                        {"stage2_steps", o.stage2_steps},
                        {"stage2_epochs", o.stage2_epochs},
                        {"lr1", lr1_},
                        {"lr2", lr2_},
                        {"batch_size", o.batch},
                        {"grad_accum", o.accum},
                        {"max_length", o.max_length},
                        {"calib_samples", o.calib_samples},
                        {"calib_seed", o.calib_seed},
                        {"mkl_samples", o.mkl_samples},
                        {"seed", o.seed},
                        {"stage2_seed", o.stage2_seed},
                        {"prompt_format", o.prompt_format},
                        {"save_every", o.save_every},
                        {"device", o.device},
                        {"dtype", o.dtype}};
  const fs::path state_path = o.out / "pipeline.json";
  if (o.resume && fs::exists(state_path)) {
    state_ = read_json_file(state_path);
    MLAB_CHECK(
        state_.contains("steps") && state_.at("steps").is_array() && state_.contains("options"),
        state_path.string(), ": not a pipeline record (no \"steps\" / \"options\")");
    for (const auto& [key, value] : options.items()) {
      const json& was = state_.at("options").value(key, json());
      if (was != value) {
        out_ << "warning: --resume with " << key << " " << value.dump() << ", the recorded run had "
             << was.dump() << "\n";
      }
    }
    out_ << "mha2mla: resuming " << o.out.string() << "\n";
  } else {
    if (!o.resume) {
      std::vector<std::string> found;
      if (fs::exists(state_path)) found.push_back("pipeline.json");
      for (const char* s : kSteps) {
        if (fs::exists(o.out / s)) found.push_back(s);
      }
      if (!found.empty()) {
        throw Error(o.out.string() + " already holds a pipeline run (" + found.front() +
                    "); give --resume to continue it, or another --out");
      }
    }
    fs::create_directories(o.out);
    state_ = {{"pipeline", "mha2mla"},
              {"version", 1},
              {"started_at", utc_now()},
              {"options", options},
              {"steps", json::array()}};
    save();
  }
  out_ << "mha2mla " << o.model.string() << " (" << family_ << ") -> " << o.out.string()
       << ": rope " << (o.ranks.empty() ? o.rope : o.ranks.string()) << " r=" << o.rope_dims
       << ", d_kv " << d_kv_ << ", lr " << lr1_ << " / " << lr2_ << ", " << train_records_
       << " training records"
       << (eval_records_.empty()
               ? std::string(", no held-out data")
               : ", " + std::to_string(eval_records_.size()) + " held-out records")
       << "\n";
  if (!eval_records_.empty() && !state_.contains("source")) {
    const auto e = held_out(o.model);
    state_["source"] = {{"model", o.model.string()}, {"eval", *e}};
    save();
    char b[64];
    std::snprintf(b, sizeof b, "%.6f", e->at("loss").get<double>());
    out_ << "mha2mla: held-out loss of the source model " << b << "\n";
  }

  const fs::path stage1_init = o.out / "stage1_init", stage2_init = o.out / "stage2_init";
  for (std::size_t i = 0; i < kSteps.size(); ++i) {
    const std::string name = kSteps[i];
    if (done(name)) {
      json& rec = record(name);
      const fs::path output = rec.contains("checkpoint") ? rec.at("checkpoint").get<std::string>()
                                                         : rec.at("output").get<std::string>();
      MLAB_CHECK(fs::is_directory(output), "pipeline.json records ", name, " as done, but ",
                 output.string(), " is missing");
      out_ << "mha2mla [" << i + 1 << "/" << kSteps.size() << "] " << name
           << ": done in an earlier run (" << output.string() << "), skipped\n";
    } else if (name == "stage1_init") {
      convert_step(i, o.model, 1);
    } else if (name == "stage1") {
      train_step(i, stage1_init, 1);
    } else if (name == "stage2_init") {
      const fs::path stage1 = record("stage1").at("checkpoint").get<std::string>();
      convert_step(i, stage1, 2);
    } else {
      train_step(i, stage2_init, 2);
    }
    if (name == o.stop_after_step && i + 1 < kSteps.size()) {
      out_ << "mha2mla: stopped after " << name << " (--stop-after-step); --resume continues\n";
      return 0;
    }
  }
  state_["finished_at"] = utc_now();
  save();
  // The held-out losses side by side (acceptance 5: stage2 below stage2_init).
  if (!eval_records_.empty()) {
    out_ << "held-out loss (" << eval_records_.size() << " records):";
    auto loss = [&](const json& rec) {
      char b[32];
      std::snprintf(b, sizeof b, " %.6f", rec.at("eval").at("loss").get<double>());
      return std::string(b);
    };
    out_ << " source" << loss(state_.at("source"));
    for (const char* s : kSteps) out_ << " | " << s << loss(record(s));
    out_ << "\n";
  }
  out_ << "mha2mla: done; the MLA model is " << record("stage2").at("checkpoint").get<std::string>()
       << "\n";
  return 0;
}

}  // namespace

int run_mha2mla(const Mha2mlaOptions& options, std::ostream& out) {
  Pipeline pipeline(options, out);
  return pipeline.run();
}

}  // namespace mlab::harness
