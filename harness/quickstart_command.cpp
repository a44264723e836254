// mla-bench quickstart: the README's main job (DESIGN.md §6, issue F9). The paper's Table 2 in
// miniature, on a CPU in minutes: the synthetic eight-task suite (synth/), the shipped MHA demo
// VLM (assets/models/), MHA2MLA-VLM's whole pipeline at two latent sizes (partial RoPE, stage-1
// fine-tuning, MD-SVD, stage-2 fine-tuning: harness/mha2mla_command.cpp), then every compared
// KV-cache method evaluated on the eight tasks into one results database, a Table-2-style
// comparison (score per task, average, KV memory measured and nominal, decode speed) and the
// dashboard. Every phase is cached in the work dir (a rerun reuses the suite, the converted
// models and the stored samples) and timed.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "datasets/task_config.hpp"
#include "harness/commands.hpp"
#include "methods/kv_memory.hpp"
#include "models/config/model_config.hpp"
#include "results/perf_metrics.hpp"
#include "results/results_store.hpp"
#include "synth/synth_suite.hpp"

namespace mlab::harness {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTasks = {"ai2d",           "gqa",     "pope",      "seedbench",
                                         "realworldqa",    "mmbench_en_dev", "chartqa",
                                         "docvqa_val"};
// Column heads of the table, in kTasks order (the paper's Table 2 names).
const std::vector<std::string> kTaskHeads = {"AI2D", "GQA", "POPE", "SEED",
                                             "RWQA", "MMB",  "ChartQA", "DocVQA"};

std::string join_tasks() {
  std::string s;
  for (const auto& t : kTasks) s += (s.empty() ? "" : ",") + t;
  return s;
}

// One evaluated configuration of the table.
struct Row {
  std::string label;   // the run name after "quickstart/"
  fs::path model;      // the model evaluated
  std::string method;  // its KV method stack (eval's grammar)
  std::string group;   // the table section: baseline | MLA | pruning | quantization
  std::string nominal = "";  // the stack methods::kv_memory prices ("": method)
};

// The fraction of the dense cache a stack keeps, by the paper's convention (methods/kv_memory:
// bytes_nominal / bytes_original; pruning counts its kept fraction), for a cache of `bits`-bit
// elements (the run's dtype: a quantized cache saves twice as much against an f32 cache).
double nominal_fraction(const models::ModelConfig& config, const std::string& method,
                        int bits = 16) {
  const auto m = methods::kv_memory(config, methods::parse_method_stack(method), 1024, bits);
  return m.bytes_nominal / m.bytes_original;
}

}  // namespace

int run_quickstart(const QuickstartOptions& o, std::ostream& out) {
  if (o.threads > 0) at::set_num_threads(o.threads);
  at::manual_seed(static_cast<uint64_t>(o.seed));
  const auto start = std::chrono::steady_clock::now();
  const fs::path source(MLAB_SOURCE_DIR);
  const fs::path configs = source / "configs" / "tasks";
  MLAB_CHECK(fs::is_directory(o.model), o.model.string(),
             ": no such model dir (the shipped demo models are under assets/models/; pass "
             "--model)");
  MLAB_CHECK(!o.d_kv.empty(), "quickstart: --d-kv needs at least one value");
  fs::create_directories(o.work_dir);
  out << "mla-bench quickstart: " << o.model.filename().string() << ", seed " << o.seed << ", "
      << at::get_num_threads() << " threads, device " << o.device << "; work dir "
      << o.work_dir.string() << "\n";
  std::vector<std::pair<std::string, double>> phases;  // (phase, seconds)
  std::ostringstream quiet;

  // [1/5] The synthetic suite: eval sets and fine-tuning data from disjoint seeds.
  auto t0 = std::chrono::steady_clock::now();
  const fs::path synth = o.work_dir / "synth";
  {
    out << "[1/5] synthetic suite: " << synth.string() << " (" << o.samples
        << " eval samples per task, " << o.train_samples << " fine-tuning records per task)";
    synth::SynthOptions so;
    so.out = synth;
    so.seed = static_cast<uint64_t>(o.seed);
    so.n = o.samples;
    so.train_n = o.train_samples;
    so.configs_dir = configs;
    // The suite is a pure function of these: a synth.json recording the same ones is reused.
    bool cached = false;
    try {
      std::ifstream in(synth / "synth.json");
      const auto m = nlohmann::json::parse(in);
      cached = m.value("seed", uint64_t{0}) == so.seed && m.value("n", int64_t{0}) == so.n &&
               m.value("train_n", int64_t{-1}) == so.train_n &&
               m.value("image_size", 0) == so.image_size &&
               m.value("format", std::string()) == "mla-bench-synth" &&
               m.at("tasks").size() == synth::synth_task_names().size();
    } catch (const std::exception&) {
      cached = false;
    }
    if (cached) {
      out << ": reused\n";
    } else {
      out << "\n";
      so.log = &std::cerr;
      so.tty = Progress::is_terminal(2);
      const auto report = synth::generate_suite(so);
      out << "  " << (report.eval_images + report.train_images) << " images in "
          << format_fixed(report.seconds, 1) << " s\n";
    }
  }
  phases.emplace_back("synthetic suite", seconds_since(t0));

  // [2/5] MHA2MLA-VLM at each d_kv: partial RoPE (MKL) -> stage 1 -> MD-SVD -> stage 2.
  t0 = std::chrono::steady_clock::now();
  const auto config = models::load_model_config(o.model / "config.json");
  std::vector<std::pair<int64_t, fs::path>> converted;
  for (const int64_t d_kv : o.d_kv) {
    Mha2mlaOptions mo;
    mo.model = o.model;
    mo.data = synth / "train" / "train.jsonl";
    mo.out = o.work_dir / "models" /
             ("mla-r" + std::to_string(o.rope_dims) + "-dkv" + std::to_string(d_kv));
    mo.rope = "mkl";
    mo.rope_dims = o.rope_dims;
    mo.d_kv = d_kv;
    mo.stage1_steps = o.steps;
    mo.stage2_steps = o.steps;
    mo.lr1 = o.lr;
    mo.lr2 = o.lr;
    mo.batch = o.batch;
    mo.accum = 1;
    mo.calib_samples = 64;
    mo.mkl_samples = 16;
    mo.seed = static_cast<uint64_t>(o.seed) + 42;
    mo.resume = true;
    mo.prompt_format = o.prompt_format;
    mo.device = o.device;
    mo.threads = o.threads;
    out << "[2/5] MHA2MLA-VLM: r = " << o.rope_dims << ", d_kv = " << d_kv << " ("
        << o.steps << " steps per stage, batch " << o.batch << ") -> " << mo.out.string()
        << "\n";
    const auto t = std::chrono::steady_clock::now();
    std::ostringstream log;
    MLAB_CHECK(run_mha2mla(mo, log) == 0, "quickstart: the MHA2MLA pipeline failed:\n",
               log.str());
    // The fine-tuned model: the checkpoint pipeline.json records for its last step (stage 2).
    std::ifstream in(mo.out / "pipeline.json");
    const auto pipeline = nlohmann::json::parse(in);
    fs::path model;
    for (const auto& step : pipeline.at("steps"))
      if (step.value("name", "") == "stage2") model = step.at("checkpoint").get<std::string>();
    MLAB_CHECK(!model.empty(), (mo.out / "pipeline.json").string(),
               ": no stage2 checkpoint recorded");
    out << "  done in " << format_fixed(seconds_since(t), 1) << " s: " << model.string() << "\n";
    converted.emplace_back(d_kv, model);
  }
  phases.emplace_back("MHA2MLA conversion + fine-tuning", seconds_since(t0));

  // [3/5] Every compared method on the eight tasks. Pruning runs at the nominal KV memory of
  // each MLA model, so each MLA row has H2O / TOVA rows of the same memory beside it.
  std::vector<Row> rows = {{"full", o.model, "full", "baseline"}};
  auto mla_spec = [&](int64_t d_kv) {
    return "mha2mla:d_kv=" + std::to_string(d_kv) + ",rope_dim=" + std::to_string(o.rope_dims);
  };
  for (const auto& [d_kv, dir] : converted)
    rows.push_back({"mha2mla-dkv" + std::to_string(d_kv), dir, "mha2mla", "MLA", mla_spec(d_kv)});
  const std::string residual = ",residual=" + std::to_string(o.quant_residual);
  {
    const auto& [d_kv, dir] = converted.front();
    const auto mla_config = models::load_model_config(dir / "config.json");
    const int64_t latent = mla_config.text.num_key_value_heads * d_kv;
    const int64_t group = std::min<int64_t>(64, latent);
    const std::string quanto = "+quanto:bits=4,group=" + std::to_string(group) + residual;
    rows.push_back({"mha2mla-dkv" + std::to_string(d_kv) + "+quanto-int4", dir,
                    "mha2mla" + quanto, "MLA", mla_spec(d_kv) + quanto});
  }
  for (const auto& [d_kv, dir] : converted) {
    const double keep = nominal_fraction(config, mla_spec(d_kv));
    char budget[32];
    std::snprintf(budget, sizeof budget, "%.4f", keep);
    const std::string tag = "@dkv" + std::to_string(d_kv);
    rows.push_back({"h2o" + tag, o.model, std::string("h2o:budget=") + budget, "pruning"});
    rows.push_back({"tova" + tag, o.model, std::string("tova:budget=") + budget, "pruning"});
    rows.push_back(
        {"streaming_llm" + tag, o.model, std::string("streaming_llm:budget=") + budget, "pruning"});
  }
  for (const std::string q : {"quanto", "hqq"}) {
    for (const int bits : {4, 2}) {
      rows.push_back({q + "-int" + std::to_string(bits), o.model,
                      q + ":bits=" + std::to_string(bits) + residual, "quantization"});
    }
  }
  t0 = std::chrono::steady_clock::now();
  const fs::path db = o.db.empty() ? o.work_dir / "results.sqlite" : o.db;
  const std::string series_prefix = o.series_prefix.empty() ? o.run_prefix : o.series_prefix;
  out << "[3/5] evaluating " << rows.size() << " configurations x " << kTasks.size()
      << " tasks x " << o.samples << " samples into " << db.string() << "\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    EvalOptions eo;
    eo.model = r.model;
    eo.methods = r.method;
    eo.tasks = join_tasks();
    eo.datasets = synth;
    eo.db = db;
    eo.run_name = o.run_prefix + "/" + r.label;
    eo.batch_size = o.eval_batch;
    eo.device = o.device;
    eo.threads = o.threads;
    eo.seed = o.seed;
    eo.series = series_prefix + "/" + r.label;
    eo.configs_dir = configs;
    eo.rank = 0;
    eo.world_size = 1;
    const auto t = std::chrono::steady_clock::now();
    run_eval(eo, quiet);
    out << "  [" << (i + 1) << "/" << rows.size() << "] " << r.label << " (" << r.method << "): "
        << format_fixed(seconds_since(t), 1) << " s\n";
  }
  phases.emplace_back("evaluation", seconds_since(t0));

  // [4/5] The table.
  t0 = std::chrono::steady_clock::now();
  results::OpenOptions ro;
  ro.read_only = true;
  const auto store = results::ResultsStore::open(db, ro);
  std::map<std::string, datasets::TaskConfig> task_configs;
  for (const auto& t : kTasks) task_configs.emplace(t, datasets::TaskConfig::load(configs, t));
  // KV bytes the full cache held over the same samples: the denominator of "measured".
  auto kv_bytes_total = [&](int64_t run) {
    double bytes = 0;
    for (const auto& s : store.samples(run))
      if (s.error.empty()) bytes += static_cast<double>(std::max(s.kv_bytes, s.kv_bytes_peak));
    return bytes;
  };
  const double full_bytes = kv_bytes_total(store.require_run(o.run_prefix + "/full"));
  out << "[4/5] Table 2 in miniature (" << o.model.filename().string()
      << ", synthetic suite; score x100 per task; KV = cache bytes as % of the full cache in the "
         "run's dtype, measured over these samples (scales, zero points and the residual window "
         "included) / nominal by the paper's convention)\n";
  std::string head = "  " + std::string(34, ' ');
  char cell[64];
  for (const auto& h : kTaskHeads) {
    std::snprintf(cell, sizeof cell, " %7s", h.c_str());
    head += cell;
  }
  head += "     Avg   KV meas  KV nom  decode tok/s";
  out << head << "\n";
  std::string section;
  for (const auto& r : rows) {
    if (r.group != section) {
      section = r.group;
      out << "  -- " << section << "\n";
    }
    const int64_t id = store.require_run(o.run_prefix + "/" + r.label);
    const auto metrics = store.metrics(id);
    std::string line = "  ";
    std::snprintf(cell, sizeof cell, "%-34s", r.label.c_str());
    line += cell;
    double sum = 0, decode = 0;
    int scored = 0, timed = 0;
    for (const auto& task : kTasks) {
      const auto& tc = task_configs.at(task);
      const std::string metric = tc.headline.substr(0, tc.headline.find(','));
      double value = -1;
      for (const auto& m : metrics)
        if (m.task == task && m.metric == metric) value = m.value * tc.scale;
      if (value >= 0) {
        sum += value;
        ++scored;
        std::snprintf(cell, sizeof cell, " %7.1f", value);
      } else {
        std::snprintf(cell, sizeof cell, " %7s", "-");
      }
      line += cell;
      for (const auto& m : metrics) {
        if (m.task == task && m.metric == results::kDecodeTokensPerS) {
          decode += m.value;
          ++timed;
        }
      }
    }
    const double measured = full_bytes > 0 ? kv_bytes_total(id) / full_bytes : 0;
    const std::string dtype = store.run(id).info.config.value("dtype", std::string("bfloat16"));
    const double nominal = nominal_fraction(config, r.nominal.empty() ? r.method : r.nominal,
                                            dtype == "float32" ? 32 : 16);
    std::snprintf(cell, sizeof cell, " %7.1f  %7.1f%% %6.1f%%  %12.0f",
                  scored ? sum / scored : 0.0, 100 * measured, 100 * nominal,
                  timed ? decode / timed : 0.0);
    line += cell;
    out << line << "\n";
  }
  phases.emplace_back("table", seconds_since(t0));

  // [5/5] The dashboard.
  t0 = std::chrono::steady_clock::now();
  DashboardOptions dopt;
  dopt.db = db;
  dopt.out = o.work_dir / "site";
  dopt.configs_dir = configs;
  run_dashboard(dopt, quiet);
  phases.emplace_back("dashboard", seconds_since(t0));
  out << "[5/5] dashboard: " << (dopt.out / "index.html").string() << "\n";

  out << "time:";
  for (const auto& [name, s] : phases) out << " " << name << " " << format_fixed(s, 1) << " s;";
  out << " total " << format_fixed(seconds_since(start), 1) << " s\n";
  out << "next: mla-bench report --db " << db.string() << " --table 2 | mla-bench regress --db "
      << db.string() << " --baseline " << o.run_prefix << "/full --candidate " << o.run_prefix
      << "/" << rows[1].label << " | mla-bench selftest\n";
  return 0;
}

}  // namespace mlab::harness
