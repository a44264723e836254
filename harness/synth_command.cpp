// `mla-bench synth` (issue F9): writes the synthetic eight-task suite (synth/synth_suite.hpp,
// docs/synth.md) and prints what it wrote, with the generation speed.
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <ostream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "harness/commands.hpp"
#include "synth/synth_suite.hpp"

namespace mlab::harness {

int run_synth(const SynthCommandOptions& options, std::ostream& out) {
  synth::SynthOptions o;
  o.out = options.out;
  o.seed = options.seed;
  o.n = options.n;
  o.train_n = options.train_n;
  o.image_size = options.image_size;
  o.configs_dir = options.configs_dir;
  std::string name;
  for (char c : options.tasks + ",") {
    if (c == ',') {
      if (!name.empty()) o.tasks.push_back(name);
      name.clear();
    } else if (c != ' ') {
      name += c;
    }
  }
  if (!options.tasks.empty() && o.tasks.empty()) {
    throw UsageError("mla-bench synth: --tasks names no task");
  }
  o.log = options.quiet ? nullptr : &std::cerr;
  o.tty = Progress::is_terminal(2);
  const synth::SynthReport report = synth::generate_suite(o);
  out << "synthetic suite in " << options.out.string() << " (seed " << options.seed << ", image "
      << options.image_size << " px)\n";
  out << std::left << std::setw(16) << "task" << std::right << std::setw(9) << "samples"
      << std::setw(9) << "chance"
      << "\n";
  for (const std::string& task : synth::synth_task_names()) {  // the suite's order
    if (!report.manifest.at("tasks").contains(task)) continue;
    const auto& info = report.manifest.at("tasks").at(task);
    out << std::left << std::setw(16) << task << std::right << std::setw(9)
        << info.at("samples").get<std::int64_t>() << std::setw(9) << std::fixed
        << std::setprecision(3) << info.at("chance").get<double>() << "\n";
  }
  const std::int64_t images = report.eval_images + report.train_images;
  out << "images: " << report.eval_images << " eval, " << report.train_images << " train";
  if (report.train_images > 0) {
    out << " (" << o.train_n * static_cast<std::int64_t>(report.manifest.at("tasks").size())
        << " training records in train/train.jsonl";
    if (report.train_redrawn > 0) out << ", " << report.train_redrawn << " redrawn";
    out << ")";
  }
  out << "; " << std::setprecision(2) << report.seconds << " s, " << std::setprecision(0)
      << (report.seconds > 0 ? images / report.seconds : 0.0) << " images/s\n";
  out.unsetf(std::ios::floatfield);
  return 0;
}

}  // namespace mlab::harness
