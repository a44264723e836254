// Writes the synthetic suite (issue F9): eval dataset dirs first (their image hashes kept), then
// the training records, whose pictures are redrawn when they equal an eval image.
#include "synth/synth_suite.hpp"

#include <chrono>
#include <fstream>
#include <memory>
#include <ostream>
#include <system_error>
#include <unordered_set>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "datasets/task_config.hpp"
#include "datasets/task_prompt.hpp"
#include "evaluators/task_scoring.hpp"
#include "synth/png_writer.hpp"

namespace mlab::synth {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kFormatVersion = 1;

// Removes `dir` and everything under it, files first (std::filesystem::remove_all is avoided:
// the mla-bench binary also links libtorch, whose exported copy crashes on non-empty dirs; see
// training/train_checkpoint.hpp's remove_tree).
void remove_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  std::vector<fs::path> entries;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    entries.push_back(it->path());
  }
  MLAB_CHECK(!ec, dir.string(), ": cannot list: ", ec.message());
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    fs::remove(*it, ec);
    MLAB_CHECK(!ec, it->string(), ": cannot remove: ", ec.message());
  }
  fs::remove(dir, ec);
  MLAB_CHECK(!ec, dir.string(), ": cannot remove: ", ec.message());
}

void make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  MLAB_CHECK(!ec && fs::is_directory(dir), dir.string(), ": cannot create: ", ec.message());
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  MLAB_CHECK(f.good(), path.string(), ": write failed");
}

void check_options(const SynthOptions& o) {
  if (o.out.empty()) throw UsageError("mla-bench synth: --out is required");
  if (o.n < 1) throw UsageError(str_cat("mla-bench synth: --n must be >= 1, got ", o.n));
  if (o.train_n < 0) {
    throw UsageError(str_cat("mla-bench synth: --train-n must be >= 0, got ", o.train_n));
  }
  if (o.n > 10'000'000 || o.train_n > 10'000'000) {
    throw UsageError("mla-bench synth: --n and --train-n must be <= 10000000");
  }
  if (o.image_size < 56 || o.image_size > 1024) {
    throw UsageError(
        str_cat("mla-bench synth: --image-size must be in 56..1024, got ", o.image_size));
  }
  std::error_code ec;
  if (fs::exists(o.out, ec) && !fs::is_directory(o.out, ec)) {
    throw UsageError("mla-bench synth: --out " + o.out.string() + " exists and is not a directory");
  }
  if (fs::is_directory(o.out, ec) && !fs::is_empty(o.out, ec) &&
      !fs::exists(o.out / "synth.json", ec)) {
    throw UsageError("mla-bench synth: --out " + o.out.string() +
                     " is a non-empty directory without synth.json; refusing to write into it "
                     "(pick an empty or new directory)");
  }
}

std::vector<const TaskGenerator*> selected(const SynthOptions& o) {
  std::vector<const TaskGenerator*> out;
  if (o.tasks.empty()) {
    for (const auto& g : task_generators()) out.push_back(&g);
    return out;
  }
  for (const std::string& name : o.tasks) {
    std::string canonical;
    try {
      canonical = evaluators::canonical_task(name);
    } catch (const Error& e) {
      throw UsageError(std::string("mla-bench synth: --tasks: ") + e.what());
    }
    const TaskGenerator* g = &find_task_generator(canonical);
    for (const auto* seen : out) {
      if (seen == g) throw UsageError("mla-bench synth: --tasks names " + canonical + " twice");
    }
    out.push_back(g);
  }
  return out;
}

json images_json(const std::vector<std::string>& names, const std::string& prefix) {
  json list = json::array();
  for (const auto& n : names) list.push_back(prefix + n);
  return list;
}

}  // namespace

std::vector<std::string> synth_task_names() {
  std::vector<std::string> names;
  for (const auto& g : task_generators()) names.emplace_back(g.task);
  return names;
}

std::vector<SynthSample> generate_eval_samples(const TaskGenerator& generator, std::uint64_t seed,
                                               std::int64_t n, int image_size) {
  GenContext ctx{SynthRng(stream_seed(seed, generator.task, "eval")), {}, image_size, false, n};
  std::vector<SynthSample> samples;
  const std::int64_t units = generator.units(n);
  for (std::int64_t i = 0; i < units; ++i) generator.generate(ctx, i, samples);
  return samples;
}

SynthReport generate_suite(const SynthOptions& o) {
  check_options(o);
  const auto tasks = selected(o);
  const auto start = std::chrono::steady_clock::now();
  make_dirs(o.out);
  // A previous suite's synth.json goes first: an interrupted run leaves no valid manifest.
  std::error_code ec;
  fs::remove(o.out / "synth.json", ec);

  SynthReport report;
  json manifest = {{"format", "mla-bench-synth"},
                   {"version", kFormatVersion},
                   {"seed", o.seed},
                   {"n", o.n},
                   {"train_n", o.train_n},
                   {"image_size", o.image_size},
                   {"tasks", json::object()}};
  std::unordered_set<std::uint64_t> eval_hashes;

  for (const TaskGenerator* g : tasks) {
    const std::string task(g->task);
    const fs::path dir = o.out / task;
    remove_dir(dir);
    make_dirs(dir / "images");
    const auto samples = generate_eval_samples(*g, o.seed, o.n, o.image_size);
    std::string lines;
    std::unique_ptr<Progress> progress;
    if (o.log) {
      progress = std::make_unique<Progress>(
          *o.log, static_cast<std::int64_t>(samples.size()),
          ProgressOptions{.label = "synth " + task, .unit = "samples", .tty = o.tty});
    }
    for (const SynthSample& s : samples) {
      for (std::size_t k = 0; k < s.pictures.size(); ++k) {
        const datasets::Image img = render_picture(s.pictures[k]);
        eval_hashes.insert(image_hash(img));
        write_png(dir / "images" / s.image_names[k], img);
        ++report.eval_images;
      }
      lines += json{{"id", s.id}, {"images", images_json(s.image_names, "images/")}, {"doc", s.doc}}
                   .dump() +
               "\n";
      if (progress) progress->advance();
    }
    if (progress) progress->finish();
    write_text(dir / "samples.jsonl", lines);
    const json dataset = {{"format", "mla-bench-dataset"},
                          {"version", 1},
                          {"task", task},
                          {"source",
                           {{"generator", "mla-bench synth"},
                            {"version", kFormatVersion},
                            {"seed", o.seed},
                            {"chance", g->chance}}},
                          {"samples", samples.size()}};
    write_text(dir / "dataset.json", dataset.dump(2) + "\n");
    manifest["tasks"][task] = {{"samples", samples.size()}, {"chance", g->chance}};
  }

  const fs::path train_dir = o.out / "train";
  remove_dir(train_dir);
  if (o.train_n > 0) {
    make_dirs(train_dir / "images");
    std::ofstream train(train_dir / "train.jsonl", std::ios::binary);
    MLAB_CHECK(train.good(), (train_dir / "train.jsonl").string(), ": cannot open for writing");
    for (const TaskGenerator* g : tasks) {
      const std::string task(g->task);
      const auto config = datasets::TaskConfig::load(o.configs_dir, task);
      make_dirs(train_dir / "images" / task);
      GenContext ctx{SynthRng(stream_seed(o.seed, task, "train")), {}, o.image_size, true, o.n};
      std::unique_ptr<Progress> progress;
      if (o.log) {
        progress = std::make_unique<Progress>(
            *o.log, o.train_n,
            ProgressOptions{.label = "synth train " + task, .unit = "records", .tty = o.tty});
      }
      std::vector<SynthSample> out;
      std::vector<datasets::Image> images;
      for (std::int64_t j = 0; j < o.train_n; ++j) {
        for (int attempt = 0;; ++attempt) {
          MLAB_CHECK(attempt < 1000, "synth train ", task, " record ", j,
                     ": every redraw equals an eval image");
          out.clear();
          images.clear();
          g->generate(ctx, j, out);
          MLAB_CHECK(out.size() == 1, "synth: internal: ", task, " gave ", out.size(),
                     " train records for one unit");
          bool clash = false;
          for (const Picture& p : out[0].pictures) {
            images.push_back(render_picture(p));
            clash = clash || eval_hashes.count(image_hash(images.back())) > 0;
          }
          if (!clash) break;
          ++report.train_redrawn;
        }
        const SynthSample& s = out[0];
        const std::string prefix = "images/" + task + "/";
        std::vector<std::string> names;
        for (std::size_t k = 0; k < images.size(); ++k) {
          const std::string name =
              std::to_string(j) + (images.size() > 1 ? "_" + std::to_string(k) : "") + ".png";
          write_png(train_dir / "images" / task / name, images[k]);
          names.push_back(prefix + name);
          ++report.train_images;
        }
        std::string human;
        for (std::size_t k = 0; k < names.size(); ++k) human += "<image>\n";
        human += datasets::render_prompt(config, s.doc, "llava");
        json record = {{"id", task + "-" + std::to_string(j)},
                       {"image", names.size() == 1 ? json(names[0]) : json(names)},
                       {"conversations", json::array({{{"from", "human"}, {"value", human}},
                                                      {{"from", "gpt"}, {"value", s.answer}}})}};
        train << record.dump() << "\n";
        if (progress) progress->advance();
      }
      if (progress) progress->finish();
    }
    train.close();
    MLAB_CHECK(train.good(), (train_dir / "train.jsonl").string(), ": write failed");
  }

  write_text(o.out / "synth.json", manifest.dump(2) + "\n");
  report.manifest = std::move(manifest);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace mlab::synth
