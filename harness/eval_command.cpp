// `mla-bench eval`: the runner of DESIGN.md §3. For each task it streams the dataset dir, skips the
// samples the run already stored (a rerun of the same run name resumes), batches the rest, builds
// lmms-eval's prompt for the model family, generates greedily with the task's max_new_tokens and
// stop strings, scores each answer with lmms-eval's metric, and writes every batch's rows in one
// transaction as soon as it is scored; then recomputes the task's aggregate metrics, speed and
// KV bytes from all the stored rows.
//
// Ranks (DESIGN.md §1): under `torchrun --no-python --nproc-per-node N mla-bench eval ...` (or
// with --rank/--world-size) rank r evaluates the samples at dataset positions p with
// p mod N == r and writes them to the one database (WAL; every batch one IMMEDIATE
// transaction). The database coordinates the shards, no process group is needed: whichever
// rank stores a task's last sample sees the task complete and writes its metrics, and the run
// is marked finished when every task is complete.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/strings.hpp"
#include "datasets/dataset_reader.hpp"
#include "datasets/task_config.hpp"
#include "datasets/task_prompt.hpp"
#include "evaluators/task_scoring.hpp"
#include "harness/commands.hpp"
#include "methods/kv_memory.hpp"
#include "methods/kv_method.hpp"
#include "models/image/image_processor_factory.hpp"
#include "models/image/rgb8_image.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/mla_attention.hpp"
#include "models/runtime/vlm.hpp"
#include "results/perf_metrics.hpp"
#include "results/results_store.hpp"

namespace mlab::harness {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct Pending {
  datasets::Sample sample;
  std::string prompt;
};

// Generates, scores and stores one batch; returns the rows written.
std::size_t run_batch(const models::Vlm& vlm, const std::string& task, const std::string& family,
                      const datasets::TaskConfig& config, std::vector<Pending>& batch,
                      results::ResultsStore& store, int64_t run, const models::CacheFactory& caches,
                      int64_t prefill_chunk, bool skip_bad, bool blank_images) {
  std::vector<results::SampleRow> rows;
  // A sample that could not be answered: stored with its error, never dropped.
  auto add_failed = [&](const std::string& sample_id, const std::string& error) {
    results::SampleRow row;
    row.task = task;
    row.sample_id = sample_id;
    row.error = error;
    rows.push_back(row);
  };
  std::vector<models::VlmRequest> requests;
  std::vector<std::size_t> index;  // batch position of each request
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& p = batch[i];
    if (p.sample.failed()) {
      add_failed(p.sample.id, p.sample.error);
      continue;
    }
    std::vector<image::Rgb8Image> images;
    for (auto& px : p.sample.pixels) {
      if (blank_images) std::fill(px.rgb.begin(), px.rgb.end(), std::uint8_t{255});
      images.push_back(image::make_rgb8_image(px.width, px.height, px.rgb));
    }
    requests.push_back(models::VlmRequest::single(p.prompt, std::move(images)));
    index.push_back(i);
  }
  if (!requests.empty()) {
    const auto& fam = config.family(family);
    models::GenerateOptions go;
    go.max_new_tokens = fam.max_new_tokens > 0 ? fam.max_new_tokens : 32;
    go.stop_strings = fam.stop;
    go.cache_factory = caches;
    go.prefill_chunk = prefill_chunk;
    const auto start = std::chrono::steady_clock::now();
    models::VlmInputs inputs;
    try {
      inputs = vlm.prepare(requests);
    } catch (const std::exception& batch_error) {
      // F11 D7: a sample the processor refuses (e.g. Qwen2.5-VL's smart_resize beyond an aspect
      // ratio of 200) is a bad sample: prepared alone to find it, it aborts the run naming it,
      // or with --skip-bad becomes a failed row while the rest of the batch runs.
      std::vector<bool> bad(requests.size(), false);
      for (std::size_t k = 0; k < requests.size(); ++k) {
        try {
          vlm.prepare({&requests[k], 1});
        } catch (const std::exception& e) {
          const auto* c10 = dynamic_cast<const c10::Error*>(&e);
          const std::string reason = c10 ? c10->what_without_backtrace() : e.what();
          const auto& p = batch[index[k]];
          if (!skip_bad) throw Error("eval: " + task + ": sample " + p.sample.id + ": " + reason);
          bad[k] = true;
          add_failed(p.sample.id, reason);
        }
      }
      if (std::find(bad.begin(), bad.end(), true) == bad.end()) throw;  // not one sample's fault
      std::vector<models::VlmRequest> good;
      std::vector<std::size_t> good_index;
      for (std::size_t k = 0; k < requests.size(); ++k) {
        if (bad[k]) continue;
        good.push_back(std::move(requests[k]));
        good_index.push_back(index[k]);
      }
      requests = std::move(good);
      index = std::move(good_index);
      if (requests.empty()) {
        store.add_samples(run, rows);
        return rows.size();
      }
      inputs = vlm.prepare(requests);
    }
    // F11 D4: a prompt longer than max_position_embeddings (Vlm::generate's check) is a bad
    // sample: it aborts the run, or with --skip-bad becomes a failed row naming the limit.
    const int64_t limit = vlm.config().text.max_position_embeddings;
    const auto lengths = inputs.attention_mask.sum(1);
    std::vector<models::VlmRequest> kept;
    std::vector<std::size_t> kept_index;
    for (std::size_t k = 0; k < requests.size(); ++k) {
      const int64_t n = lengths[static_cast<int64_t>(k)].item<int64_t>();
      if (n <= limit) {
        kept.push_back(std::move(requests[k]));
        kept_index.push_back(index[k]);
        continue;
      }
      const auto& p = batch[index[k]];
      const std::string reason = "prompt of " + std::to_string(n) +
                                 " tokens exceeds max_position_embeddings " + std::to_string(limit);
      if (!skip_bad) throw Error("eval: " + task + ": sample " + p.sample.id + ": " + reason);
      add_failed(p.sample.id, reason);
    }
    if (kept.size() != requests.size()) {
      requests = std::move(kept);
      index = std::move(kept_index);
      if (requests.empty()) {
        store.add_samples(run, rows);
        return rows.size();
      }
      inputs = vlm.prepare(requests);
    }
    const auto r = vlm.generate(inputs, go);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Each row's share of the batch (sums over rows give the batch's totals back).
    const auto n = static_cast<int64_t>(requests.size());
    const int64_t prompt_len = r.prompt_tokens / n;
    for (std::size_t k = 0; k < requests.size(); ++k) {
      const auto& p = batch[index[k]];
      results::SampleRow row;
      row.task = task;
      row.sample_id = p.sample.id;
      row.prediction = r.texts[k];
      row.latency_s = seconds / static_cast<double>(n);
      row.kv_bytes = r.kv_bytes / n;
      row.kv_bytes_peak = r.kv_bytes_peak / n;
      row.prompt_tokens = prompt_len;
      row.new_tokens = r.decode_steps;
      row.kv_tokens = prompt_len + r.decode_steps;
      row.prefill_s = r.prefill_seconds / static_cast<double>(n);
      row.decode_s = r.decode_seconds / static_cast<double>(n);
      try {
        row.metrics = evaluators::score_sample(task, r.texts[k], p.sample.doc);
      } catch (const Error& e) {
        row.error = e.what();  // recorded, the run goes on (DuckDB's "failure is a value")
      }
      rows.push_back(row);
    }
  }
  store.add_samples(run, rows);
  return rows.size();
}

// torchrun's environment (RANK, WORLD_SIZE) unless given on the command line.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  try {
    std::size_t used = 0;
    const int x = std::stoi(v, &used);
    if (used == std::strlen(v)) return x;
  } catch (const std::exception&) {
  }
  throw UsageError(std::string("eval: environment variable ") + name + "='" + v +
                   "' is not an integer");
}

// Score aggregates and measured speed/KV bytes of one task from its stored rows.
void store_task_metrics(results::ResultsStore& store, int64_t run, const std::string& task,
                        std::ostream& out, int64_t written, int64_t skipped) {
  std::vector<nlohmann::json> scored;
  int64_t failed = 0, prompt = 0, decoded = 0, kv_tokens = 0, kv_bytes = 0, n = 0;
  double prefill_s = 0, decode_s = 0, latency = 0;
  int64_t kv_peak = 0;
  for (const auto& row : store.samples(run, task)) {
    if (!row.error.empty() || row.metrics.is_null()) {
      ++failed;
      continue;
    }
    scored.push_back(row.metrics);
    prompt += row.prompt_tokens;
    decoded += row.new_tokens;
    kv_tokens += row.kv_tokens;
    kv_bytes += row.kv_bytes;
    kv_peak = std::max(kv_peak, std::max(row.kv_bytes, row.kv_bytes_peak));
    prefill_s += row.prefill_s;
    decode_s += row.decode_s;
    latency += row.latency_s;
    ++n;
  }
  const nlohmann::json agg = evaluators::aggregate_scores(task, scored);
  for (const auto& [metric, value] : agg.items()) {
    if (value.is_number()) store.set_metric(run, task, metric, value.get<double>(), n);
  }
  auto perf = [&](std::string_view name, double value) {
    store.set_metric(run, task, std::string(name), value, n);
  };
  if (prefill_s > 0) perf(results::kPrefillTokensPerS, static_cast<double>(prompt) / prefill_s);
  if (decode_s > 0) perf(results::kDecodeTokensPerS, static_cast<double>(decoded) / decode_s);
  if (kv_tokens > 0) {
    perf(results::kKvBytesPerToken, static_cast<double>(kv_bytes) / static_cast<double>(kv_tokens));
    perf(results::kKvBytesPeak, static_cast<double>(kv_peak));  // per sample share, largest
  }
  if (n > 0) perf(results::kLatencyS, latency / static_cast<double>(n));
  out << task << ": " << written << " new, " << skipped << " already stored, " << failed
      << " failed; " << agg.dump() << "\n";
}

// The run's KV-memory row: measured bytes per token per layer over every stored sample, beside
// the analytic figure of methods/kv_memory (paper Tables 1-2) at the cache's element width.
// The analytic figure follows each sample's own sequence (prefill + decode steps), so that the
// quantizers' residual window and the pruners' budget are counted as the caches hold them: for
// every method the measured and the analytic bytes agree (test_eval_methods).
void store_kv_memory(results::ResultsStore& store, int64_t run, const models::Vlm& vlm,
                     const std::string& method) {
  const auto stack = methods::parse_method_stack(method);
  const int bits = static_cast<int>(c10::elementSize(vlm.dtype()) * 8);
  int64_t bytes = 0, tokens = 0;
  double analytic_bytes = 0;
  for (const auto& row : store.samples(run)) {
    if (!row.error.empty() || row.kv_tokens <= 0) continue;
    bytes += row.kv_bytes;
    tokens += row.kv_tokens;
    const auto m = methods::kv_memory(vlm.config(), stack, row.kv_tokens, bits,
                                      std::max<int64_t>(1, row.prompt_tokens));
    analytic_bytes += m.total_bytes_real / static_cast<double>(m.layers);
  }
  if (tokens == 0) return;
  const int64_t layers = vlm.config().text.num_hidden_layers;
  const auto analytic = methods::kv_memory(vlm.config(), stack, 1, bits);
  results::KvMemoryRow row;
  row.method = method;
  row.bytes_per_token_layer_measured =
      static_cast<double>(bytes) / static_cast<double>(tokens) / static_cast<double>(layers);
  row.analytic = analytic_bytes / static_cast<double>(tokens);
  row.vs_original = row.bytes_per_token_layer_measured / analytic.bytes_original;
  row.vs_mha_equivalent = row.bytes_per_token_layer_measured / analytic.bytes_mha;
  store.set_kv_memory(run, row);
}

// The method stack a paper-table row names (configs/paper/table<N>.json "method_spec"; rows
// without one run the model as loaded: "full"). Throws UsageError for an unknown table or row.
std::string paper_row_method(const std::string& paper_row) {
  const auto slash = paper_row.find('/');
  if (paper_row.rfind("table", 0) != 0 || slash == std::string::npos) {
    throw UsageError(
        "eval: --paper-row must be table<N>/<row id> (e.g. table1/llava15_7b/original), got '" +
        paper_row + "'");
  }
  const auto file = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "paper" /
                    (paper_row.substr(0, slash) + ".json");
  if (!std::filesystem::exists(file)) {
    throw UsageError("eval: --paper-row " + paper_row + ": no such table (" + file.string() +
                     "; tables: table1 .. table4)");
  }
  nlohmann::json table;
  try {
    std::ifstream in(file);
    table = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    MLAB_FAIL(file.string(), ": ", e.what());
  }
  const std::string id = paper_row.substr(slash + 1);
  std::vector<std::string> ids;
  for (const auto& row : table.value("rows", nlohmann::json::array())) {
    const std::string row_id = row.value("id", std::string());
    if (row_id == id) return row.value("method_spec", std::string("full"));
    ids.push_back(row_id);
  }
  throw UsageError("eval: --paper-row " + paper_row + ": " +
                   unknown_name_message("row of " + paper_row.substr(0, slash), id, ids));
}

}  // namespace

int run_eval(const EvalOptions& o, std::ostream& out) {
  // F11 D5: SQLite opens "" as a temporary database and ":memory:" in memory; either would
  // report a complete run and store nothing.
  if (o.db.empty() || o.db == ":memory:") {
    throw UsageError("eval: --db '" + o.db.string() +
                     "': results must go to a database file (e.g. --db results.sqlite)");
  }
  if (o.threads > 0) at::set_num_threads(o.threads);
  at::manual_seed(static_cast<uint64_t>(o.seed));
  // Method specs are checked before anything loads (unknown names, options, ranges, stacks).
  const std::string methods_text =
      !o.methods.empty()
          ? o.methods
          : (o.paper_row.empty() ? std::string("full") : paper_row_method(o.paper_row));
  std::vector<std::string> method_specs = methods::split_method_list(methods_text);
  for (auto& spec : method_specs) spec = methods::expand_method_presets(spec);
  if (method_specs.empty()) throw UsageError("eval: --methods is empty (e.g. --methods full)");
  if (!o.paper_row.empty() && method_specs.size() > 1) {
    throw UsageError("eval: --paper-row " + o.paper_row + " is one table cell row; give one " +
                     "method stack with it, not " + std::to_string(method_specs.size()));
  }
  for (const auto& spec : method_specs) {
    try {
      methods::parse_method_stack(spec);
    } catch (const Error& e) {
      throw UsageError(std::string("eval: --methods: ") + e.what());
    }
  }
  const auto tasks = split_list(o.tasks);
  MLAB_CHECK(!tasks.empty(), "eval: --tasks is empty");
  MLAB_CHECK(o.batch_size > 0, "eval: --batch-size must be positive");
  const int world = o.world_size >= 0 ? o.world_size : env_int("WORLD_SIZE", 1);
  const int rank = o.rank >= 0 ? o.rank : env_int("RANK", 0);
  if (world < 1 || rank < 0 || rank >= world) {
    throw UsageError("eval: rank " + std::to_string(rank) + " of world size " +
                     std::to_string(world) + " is not a valid shard (0 <= rank < world size)");
  }
  // Everything cheap is checked before the model loads and before the run is created: task
  // names, their configs, their dataset dirs.
  std::vector<std::pair<std::string, datasets::TaskConfig>> task_configs;
  for (const auto& task_name : tasks) {
    const std::string task = evaluators::canonical_task(task_name);
    task_configs.emplace_back(task, datasets::TaskConfig::load(o.configs_dir, task));
    const auto dir = o.datasets / task;
    MLAB_CHECK(std::filesystem::is_directory(dir), dir.string(), ": no dataset dir for task '",
               task, "' (--datasets ROOT holds one dir per task: ",
               "ROOT/<task>/samples.jsonl; see docs/formats.md)");
    // F11 D6: the run below stops after dataset.json's count (or --limit) and never sees the
    // rest of the file; check-dataset's count check, applied to the whole file first.
    datasets::DatasetReader(dir, task).check_count();
  }
  models::VlmOptions vo;
  try {
    vo.processor = image::parse_processor_variant(o.processor);
  } catch (const Error& e) {
    throw UsageError(std::string("eval: --processor: ") + e.what());
  }
  vo.pillow = image::default_pass_order(vo.processor);
  if (o.db.has_parent_path()) std::filesystem::create_directories(o.db.parent_path());
  std::string device = o.device;
  // One GPU per rank on a multi-GPU host, as torchrun's LOCAL_RANK says; more ranks than GPUs
  // share them round-robin (small models fit several times).
  if (device == "cuda" && world > 1) {
    const int gpus = static_cast<int>(at::getNumGPUs());
    MLAB_CHECK(gpus > 0, "eval: --device cuda: no CUDA device is available");
    device += ":" + std::to_string(env_int("LOCAL_RANK", rank) % gpus);
  }
  vo.device = models::parse_device(device);
  if (o.dtype != "auto")
    vo.dtype = models::parse_compute_dtype(o.dtype);
  else if (vo.device.is_cpu())
    vo.dtype = c10::kFloat;
  const models::Vlm vlm = models::Vlm::load(o.model, vo);
  const std::string family(models::family_name(vlm.config().family));
  std::vector<methods::MethodStack> stacks;
  for (const auto& spec : method_specs) {
    try {
      stacks.push_back(methods::make_method_stack(spec, &vlm));
    } catch (const Error& e) {
      throw UsageError(std::string("eval: --methods: ") + e.what());
    }
  }

  MLAB_CHECK(o.db_timeout_s >= 0, "eval: --db-timeout must be >= 0, got ", o.db_timeout_s);
  results::OpenOptions so;
  so.busy_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.db_timeout_s * 1000));
  results::ResultsStore store = results::ResultsStore::open(o.db, so);
  const std::string base_name =
      o.run_name.empty() ? o.model.filename().string() + "-" + o.tasks : o.run_name;
  // One run per method stack (named <run-name>/<stack> when --methods lists several).
  for (const auto& stack : stacks) {
    const std::string method = stack.spec();
    const models::CacheFactory caches = stack.cache_factory();
    results::RunInfo info;
    info.name = stacks.size() > 1 ? base_name + "/" + method : base_name;
    info.torch_version = TORCH_VERSION;
    info.device = o.device;
    info.threads = at::get_num_threads();
    info.seed = o.seed;
    // The resolved config: what a resume must match. The rank is not part of it (every shard
    // joins the same run); the world size is, so a resume cannot mix shardings.
    info.config = {{"model", std::filesystem::absolute(o.model).string()},
                   {"family", family},
                   {"dtype", std::string(models::compute_dtype_name(vlm.dtype()))},
                   {"methods", method},
                   {"method_stack", method},
                   {"tasks", tasks},
                   {"limit", o.limit},
                   {"batch_size", o.batch_size},
                   {"world_size", world},
                   {"datasets", std::filesystem::absolute(o.datasets).string()},
                   {"processor", std::string(image::processor_variant_name(vo.processor))}};
    // Runs stored before "processor" was recorded used transformers 5's processor.
    info.legacy_defaults = {{"processor", std::string(image::processor_variant_name(
                                              image::ProcessorVariant::kTransformers5))}};
    if (o.blank_images) info.config["blank_images"] = true;
    if (!o.paper_row.empty()) {
      const auto slash = o.paper_row.find('/');
      if (o.paper_row.rfind("table", 0) != 0 || slash == std::string::npos) {
        throw UsageError(
            "eval: --paper-row must be table<N>/<row id> (e.g. "
            "table1/llava15_7b/original), got '" +
            o.paper_row + "'");
      }
      info.config["paper_row"] = o.paper_row;
    }
    // One trend per method: with several stacks, each gets its own series under --series.
    if (!o.series.empty())
      info.config["series"] = stacks.size() > 1 ? o.series + "/" + method : o.series;
    const int64_t run = store.begin_run(info);
    out << "run '" << info.name << "' (id " << run << ") in " << o.db.string();
    out << "; method " << method;
    if (world > 1) out << ", rank " << rank << " of " << world;
    out << "\n";

    std::vector<std::pair<std::string, int64_t>> totals;  // (task, samples it must have)
    for (const auto& [task, config] : task_configs) {
      datasets::DatasetOptions dopt;
      dopt.decode_images = true;
      dopt.skip_bad = o.skip_bad;
      datasets::DatasetReader reader(o.datasets / task, task, dopt);
      const auto done = store.finished_samples(run);
      int64_t total = reader.info().samples;
      if (o.limit > 0) total = std::min(total, o.limit);
      ProgressOptions po;
      po.label = world > 1 ? task + " [rank " + std::to_string(rank) + "]" : task;
      po.tty = Progress::is_terminal(2);
      // This rank's share of the task: positions p < total with p mod world == rank.
      const int64_t share = total / world + (rank < total % world ? 1 : 0);
      Progress progress(std::cerr, share, po);
      std::vector<Pending> batch;
      datasets::Sample sample;
      int64_t seen = 0, skipped = 0, written = 0;
      while (seen < total && reader.next(sample)) {
        const int64_t position = seen++;
        if (position % world != rank) continue;
        if (done.count({task, sample.id})) {
          ++skipped;
          progress.advance();
          continue;
        }
        Pending p;
        if (!sample.failed()) {
          try {
            p.prompt = datasets::render_prompt(config, sample.doc, family);
          } catch (const Error& e) {
            sample.error = e.what();
          }
        }
        p.sample = sample;
        batch.push_back(std::move(p));
        if (static_cast<int64_t>(batch.size()) == o.batch_size) {
          written += static_cast<int64_t>(run_batch(vlm, task, family, config, batch, store, run,
                                                    caches, stack.recipe().prefill_chunk, o.skip_bad,
                                                    o.blank_images));
          progress.advance(static_cast<int64_t>(batch.size()));
          batch.clear();
        }
      }
      if (!batch.empty()) {
        written += static_cast<int64_t>(run_batch(vlm, task, family, config, batch, store, run,
                                                  caches, stack.recipe().prefill_chunk, o.skip_bad,
                                                    o.blank_images));
        progress.advance(static_cast<int64_t>(batch.size()));
      }
      progress.finish();
      totals.emplace_back(task, total);
      // Aggregates need every shard's rows: the rank that completes the task writes them.
      const int64_t stored = store.sample_count(run, task);
      if (stored >= total) {
        store_task_metrics(store, run, task, out, written, skipped);
      } else {
        out << task << ": " << written << " new, " << skipped << " already stored; " << stored
            << " of " << total << " stored, the other ranks complete it\n";
      }
    }
    // Whichever rank stores the run's last sample sees every task complete here (each rank checks
    // after its own last write) and finishes the run.
    bool complete = true;
    for (const auto& [task, total] : totals)
      complete = complete && store.sample_count(run, task) >= total;
    if (complete) {
      store_kv_memory(store, run, vlm, method);
      store.finish_run(run);
      out << "run '" << info.name << "' complete\n";
    }
  }  // one run per method stack
  return 0;
}

}  // namespace mlab::harness
