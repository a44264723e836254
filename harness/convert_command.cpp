// `mla-bench convert`: MHA2MLA-VLM conversion of a model directory (methods/mha2mla), written as
// a Hugging Face directory our runtime loads; prints the keep-set profile and the per-layer
// truncation losses of the latent initialisation (split = MD-SVD vs joint: Theorem 2.1, Fig. 4).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "harness/calibration_data.hpp"
#include "harness/commands.hpp"
#include "methods/mha2mla/mha2mla_converter.hpp"
#include "models/runtime/mla_attention.hpp"
#include "models/nn/weights.hpp"

namespace mlab::harness {
namespace {

std::string percent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * x);
  return buf;
}

}  // namespace

int run_convert(const ConvertOptions& o, std::ostream& out) {
  if (o.threads > 0) at::set_num_threads(o.threads);
  // The calibration data first: a bad dataset fails before the model loads.
  CalibrationOptions calib_options;
  calib_options.format = parse_calib_format(o.calib_format);
  calib_options.samples = o.calib_samples;
  calib_options.seed = o.calib_seed;
  CalibrationData calib;
  if (!o.calib.empty() && !o.calib_data.empty()) {
    throw UsageError("mla-bench convert: give --calib DIR (a dataset dir) or --calib-data FILE "
                     "(training data), not both");
  }
  if (!o.calib.empty()) calib = read_calibration(o.calib, calib_options);
  if (!o.calib_data.empty()) {
    calib = read_calibration_train_data(o.calib_data, calib_options, o.calib_image_root);
    for (std::size_t i = 0; i < calib.skipped.size(); ++i) {
      std::cerr << "mla-bench: warning: --calib-data: skipping record " << calib.skipped[i] << ": "
                << calib.skip_reasons[i] << "\n";
    }
  } else if (!calib.skipped.empty()) {
    std::cerr << "mla-bench: warning: --calib-format train: " << calib.skipped.size()
              << " sample(s) of " << o.calib.string() << " have no answer and were skipped:";
    const std::size_t shown = std::min<std::size_t>(calib.skipped.size(), 20);
    for (std::size_t i = 0; i < shown; ++i) std::cerr << (i ? ", " : " ") << calib.skipped[i];
    if (shown < calib.skipped.size()) {
      std::cerr << ", ... (" << calib.skipped.size() - shown << " more)";
    }
    std::cerr << "\n";
  }
  const std::vector<models::VlmRequest>& calibration = calib.requests;
  models::VlmOptions vo;
  vo.device = models::parse_device(o.device);
  vo.dtype = models::parse_compute_dtype(o.dtype);
  models::Vlm vlm = models::Vlm::load(o.model, vo);
  methods::ConvertOptions co;
  co.strategy = o.rope;
  co.rope_dim = o.rope_dims;
  co.ranks = o.ranks;
  co.stage = o.stage;
  co.d_kv = o.d_kv;
  co.svd = methods::canonical_svd_init(o.svd);
  methods::parse_save_format(o.format);  // fail before the slow part
  co.mkl_queries = o.mkl_queries;
  co.mkl_samples = o.mkl_samples;
  out << "convert " << o.model.string() << ": " << vlm.config().text.num_hidden_layers;
  if (const auto s1 = models::MlaConfig::from_model_config(vlm.config())) {
    // A stage-1 model keeps its keep-sets (--rope / --rope-dims / --ranks do not apply).
    out << " layers, a stage-1 model (rope " << s1->strategy << " r=" << s1->rope_dim << ")";
  } else {
    out << " layers, rope " << (o.ranks.empty() ? o.rope : o.ranks.string())
        << " r=" << o.rope_dims;
  }
  out << ", stage " << o.stage;
  if (o.stage == 2) out << ", d_kv=" << o.d_kv << ", svd " << co.svd;
  out << ", " << calibration.size() << " calibration samples";
  if (!o.calib.empty() || !o.calib_data.empty()) {
    out << " (" << calib_format_name(calib_options.format) << " format, seed "
        << calib_options.seed << ", of " << calib.dataset_samples
        << (o.calib_data.empty() ? "" : " training records") << ")";
  }
  out << "\n";
  std::unique_ptr<Progress> bar;
  std::string current;
  const auto progress = [&](const std::string& stage, int64_t done, int64_t total) {
    if (stage != current) {
      if (bar) bar->finish();
      ProgressOptions po;
      po.label = stage;
      po.tty = Progress::is_terminal(2);
      bar = std::make_unique<Progress>(std::cerr, total, po);
      current = stage;
    }
    bar->advance();
    if (done == total) {
      bar->finish();
      bar.reset();
      current.clear();
    }
  };
  const auto report = methods::convert_to_mla(vlm, co, calibration, progress);
  methods::save_converted(vlm, report, o.out, methods::parse_save_format(o.format));

  // The kept frequencies by quarter of the spectrum (Fig. 5's profile, f = 0 highest).
  const int64_t F = vlm.config().text.head_dim / 2;
  std::vector<int64_t> quarter(4, 0);
  int64_t kept = 0;
  for (const auto& layer : report.mla.kept_frequencies) {
    for (const auto& head : layer) {
      for (auto f : head) {
        ++quarter[std::min<int64_t>(3, f * 4 / F)];
        ++kept;
      }
    }
  }
  out << "kept frequencies by quarter (f=0 highest): ";
  for (int q = 0; q < 4; ++q) out << (q ? " / " : "") << percent(double(quarter[q]) / kept);
  out << "\n";
  bool theorem = true;
  if (!report.losses.empty()) {
    out << "layer  img split  img joint  txt split  txt joint  split/joint  (relative "
           "||(W-W')X||^2)\n";
    for (const auto& l : report.losses) {
      const double split = l.split_image + l.split_text, joint = l.joint_image + l.joint_text;
      const double ratio = joint > 0 ? split / joint : 1.0;
      theorem &= split <= joint * (1 + 1e-9) + 1e-12;
      auto rel = [](double loss, double energy) { return energy > 0 ? loss / energy : 0.0; };
      char line[160];
      std::snprintf(line, sizeof line, "%5lld  %9.3e  %9.3e  %9.3e  %9.3e  %11.4f\n",
                    static_cast<long long>(l.layer), rel(l.split_image, l.energy_image),
                    rel(l.joint_image, l.energy_image), rel(l.split_text, l.energy_text),
                    rel(l.joint_text, l.energy_text), ratio);
      out << line;
    }
    out << "Theorem 2.1 (split loss <= joint loss) in every layer: " << (theorem ? "yes" : "NO")
        << "\n";
  }
  out << "timings: scores " << report.score_seconds << " s, calibration "
      << report.calibration_seconds << " s, SVD " << report.svd_seconds << " s\n";
  out << "wrote " << o.out.string() << "\n";
  if (!o.report.empty()) {
    nlohmann::json j = {{"kept_frequencies", report.mla.kept_frequencies},
                        {"image_tokens", report.image_tokens},
                        {"text_tokens", report.text_tokens},
                        {"score_seconds", report.score_seconds},
                        {"calibration_seconds", report.calibration_seconds},
                        {"svd_seconds", report.svd_seconds},
                        {"theorem_2_1_holds", theorem}};
    if (!o.calib_data.empty()) {
      j["calibration"] = {{"data", o.calib_data.string()},
                          {"format", calib_format_name(calib_options.format)},
                          {"seed", calib_options.seed},
                          {"records", calib.dataset_samples},
                          {"ids", calib.ids},
                          {"skipped", calib.skipped},
                          {"skip_reasons", calib.skip_reasons}};
    }
    if (!o.calib.empty()) {
      j["calibration"] = {{"dataset", o.calib.string()},
                          {"format", calib_format_name(calib_options.format)},
                          {"seed", calib_options.seed},
                          {"dataset_samples", calib.dataset_samples},
                          {"ids", calib.ids},
                          {"skipped_without_answer", calib.skipped}};
    }
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : report.losses) {
      layers.push_back({{"layer", l.layer},
                        {"split_image", l.split_image},
                        {"split_text", l.split_text},
                        {"joint_image", l.joint_image},
                        {"joint_text", l.joint_text},
                        {"weight_image", l.weight_image},
                        {"weight_text", l.weight_text},
                        {"energy_image", l.energy_image},
                        {"energy_text", l.energy_text}});
    }
    j["layers"] = layers;
    if (report.scores.defined()) {
      const at::Tensor s = report.scores.contiguous();
      j["scores"] = std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
      j["scores_shape"] = s.sizes().vec();
    }
    std::ofstream f(o.report);
    MLAB_CHECK(f.good(), o.report.string(), ": cannot write");
    f << j.dump(1) << "\n";
  }
  return theorem ? 0 : 1;
}

}  // namespace mlab::harness
