// `mla-bench eval`: the runner of DESIGN.md §3. For each task it streams the dataset dir, skips the
// samples the run already stored (a rerun of the same run name resumes), batches the rest, builds
// lmms-eval's prompt for the model family, generates greedily with the task's max_new_tokens and
// stop strings, scores each answer with lmms-eval's metric, and writes every batch's rows in one
// transaction as soon as it is scored; then recomputes the task's aggregate metrics from all the
// stored rows.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "datasets/dataset_reader.hpp"
#include "datasets/task_config.hpp"
#include "datasets/task_prompt.hpp"
#include "evaluators/task_scoring.hpp"
#include "harness/commands.hpp"
#include "models/image/rgb8_image.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/vlm.hpp"
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
                      results::ResultsStore& store, int64_t run) {
  std::vector<results::SampleRow> rows;
  std::vector<models::VlmRequest> requests;
  std::vector<std::size_t> index;  // batch position of each request
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& p = batch[i];
    if (p.sample.failed()) {
      results::SampleRow row;
      row.task = task;
      row.sample_id = p.sample.id;
      row.error = p.sample.error;
      rows.push_back(row);
      continue;
    }
    std::vector<image::Rgb8Image> images;
    for (auto& px : p.sample.pixels)
      images.push_back(image::make_rgb8_image(px.width, px.height, px.rgb));
    requests.push_back(models::VlmRequest::single(p.prompt, std::move(images)));
    index.push_back(i);
  }
  if (!requests.empty()) {
    const auto& fam = config.family(family);
    models::GenerateOptions go;
    go.max_new_tokens = fam.max_new_tokens > 0 ? fam.max_new_tokens : 32;
    go.stop_strings = fam.stop;
    const auto start = std::chrono::steady_clock::now();
    const auto inputs = vlm.prepare(requests);
    const auto r = vlm.generate(inputs, go);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (std::size_t k = 0; k < requests.size(); ++k) {
      const auto& p = batch[index[k]];
      results::SampleRow row;
      row.task = task;
      row.sample_id = p.sample.id;
      row.prediction = r.texts[k];
      row.latency_s = seconds / static_cast<double>(requests.size());
      row.kv_bytes = r.kv_bytes / static_cast<int64_t>(requests.size());
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

}  // namespace

int run_eval(const EvalOptions& o, std::ostream& out) {
  if (o.threads > 0) at::set_num_threads(o.threads);
  at::manual_seed(static_cast<uint64_t>(o.seed));
  for (const auto& m : split_list(o.methods)) {
    if (m != "full") {
      throw UsageError(
          "--methods: only 'full' (the model as loaded; a converted MHA2MLA dir runs its "
          "latent cache) is available; '" +
          m + "' comes with issue F7");
    }
  }
  const auto tasks = split_list(o.tasks);
  MLAB_CHECK(!tasks.empty(), "eval: --tasks is empty");
  MLAB_CHECK(o.batch_size > 0, "eval: --batch-size must be positive");
  models::VlmOptions vo;
  vo.device = models::parse_device(o.device);
  if (o.dtype != "auto")
    vo.dtype = models::parse_compute_dtype(o.dtype);
  else if (vo.device.is_cpu())
    vo.dtype = c10::kFloat;
  const models::Vlm vlm = models::Vlm::load(o.model, vo);
  const std::string family(models::family_name(vlm.config().family));

  results::ResultsStore store = results::ResultsStore::open(o.db);
  results::RunInfo info;
  info.name = o.run_name.empty() ? o.model.filename().string() + "-" + o.tasks : o.run_name;
  info.torch_version = TORCH_VERSION;
  info.device = o.device;
  info.threads = at::get_num_threads();
  info.seed = o.seed;
  info.config = {{"model", std::filesystem::absolute(o.model).string()},
                 {"family", family},
                 {"dtype", std::string(models::compute_dtype_name(vlm.dtype()))},
                 {"methods", o.methods},
                 {"tasks", tasks},
                 {"limit", o.limit},
                 {"batch_size", o.batch_size},
                 {"datasets", std::filesystem::absolute(o.datasets).string()}};
  const int64_t run = store.begin_run(info);
  out << "run '" << info.name << "' (id " << run << ") in " << o.db.string() << "\n";

  for (const auto& task_name : tasks) {
    const std::string task = evaluators::canonical_task(task_name);
    const auto config = datasets::TaskConfig::load(o.configs_dir, task);
    datasets::DatasetOptions dopt;
    dopt.decode_images = true;
    dopt.skip_bad = o.skip_bad;
    datasets::DatasetReader reader(o.datasets / task, task, dopt);
    const auto done = store.finished_samples(run);
    int64_t total = reader.info().samples;
    if (o.limit > 0) total = std::min(total, o.limit);
    ProgressOptions po;
    po.label = task;
    po.tty = Progress::is_terminal(2);
    Progress progress(std::cerr, total, po);
    std::vector<Pending> batch;
    datasets::Sample sample;
    int64_t seen = 0, skipped = 0, written = 0;
    while ((o.limit <= 0 || seen < o.limit) && reader.next(sample)) {
      ++seen;
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
        written += static_cast<int64_t>(run_batch(vlm, task, family, config, batch, store, run));
        progress.advance(static_cast<int64_t>(batch.size()));
        batch.clear();
      }
    }
    if (!batch.empty()) {
      written += static_cast<int64_t>(run_batch(vlm, task, family, config, batch, store, run));
      progress.advance(static_cast<int64_t>(batch.size()));
    }
    progress.finish();
    // Aggregates from every stored row of the task (resumed runs included), in doc order.
    std::vector<nlohmann::json> scored;
    int64_t failed = 0;
    for (const auto& row : store.samples(run, task)) {
      if (!row.error.empty() || row.metrics.is_null()) {
        ++failed;
        continue;
      }
      scored.push_back(row.metrics);
    }
    const nlohmann::json agg = evaluators::aggregate_scores(task, scored);
    for (const auto& [metric, value] : agg.items()) {
      if (value.is_number())
        store.set_metric(run, task, metric, value.get<double>(),
                         static_cast<int64_t>(scored.size()));
    }
    out << task << ": " << written << " new, " << skipped << " already stored, " << failed
        << " failed; " << agg.dump() << "\n";
  }
  store.finish_run(run);
  return 0;
}

}  // namespace mlab::harness
