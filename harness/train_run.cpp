// mla-bench train without --dry-run (issue F8): fine-tunes a stage-1 or stage-2 dir on LLaVA /
// swift-format instruction data with the authors' trainable set and WSD schedule, writing
// checkpoints and a JSONL log into --out (docs/training.md).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "compat/torch_compat.hpp"
#include "core/error.hpp"
#include "harness/commands.hpp"
#include "models/config/model_config.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/vlm.hpp"
#include "results/results_store.hpp"
#include "training/distributed.hpp"
#include "training/evaluate_loss.hpp"
#include "training/lr_schedule.hpp"
#include "training/train_checkpoint.hpp"
#include "training/train_data.hpp"
#include "training/trainable.hpp"
#include "training/trainer.hpp"

namespace mlab::harness {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct ModelStage {
  int stage = 0;
  int64_t rope_dim = 0;
  int64_t d_kv = 0;
};

// The stage of a model dir from its config.json "mha2mla" block: our converter's "stage", else
// the authors' keys (low_rank > 0 or an SVD init: stage 2; the block alone: stage 1).
ModelStage model_stage(const fs::path& dir) {
  std::ifstream in(dir / "config.json");
  MLAB_CHECK(in.good(), (dir / "config.json").string(), ": cannot open");
  const json cfg = json::parse(in);
  ModelStage s;
  if (!cfg.contains("mha2mla") || !cfg.at("mha2mla").is_object()) return s;
  const json& m = cfg.at("mha2mla");
  s.rope_dim = m.value("rope_dim_for_mla", int64_t{0});
  s.d_kv = m.value("low_rank", int64_t{0});
  if (m.contains("stage")) {
    s.stage = m.at("stage").get<int>();
  } else {
    s.stage = s.d_kv > 0 || m.value("svd_init_method", std::string("none")) != "none" ? 2 : 1;
  }
  return s;
}

std::string clock(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  char b[32];
  std::snprintf(b, sizeof b, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return b;
}

// Keeps the log lines of steps before `step` (a resumed run rewrites what followed its checkpoint).
void truncate_log(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      const json j = json::parse(line);
      if (j.contains("step") && j.at("step").get<int64_t>() < step) kept += line + "\n";
    } catch (const json::exception&) {
    }
  }
  in.close();
  std::ofstream o(path, std::ios::trunc);
  o << kept;
}

// The results store's training run (docs/training.md "Results store"): created, or the run of
// that name taken over with its steps from `first_step` on deleted (0: a fresh run).
results::ResultsStore open_train_store(const TrainOptions& o, const json& run,
                                       const c10::Device& device, int64_t first_step, int64_t& id) {
  if (o.db.has_parent_path()) fs::create_directories(o.db.parent_path());
  results::ResultsStore store = results::ResultsStore::open(o.db);
  results::RunInfo info;
  info.name =
      o.run_name.empty() ? "train:" + fs::absolute(o.out).lexically_normal().string() : o.run_name;
  info.torch_version = TORCH_VERSION;
  info.device = device.str();
  info.threads = at::get_num_threads();
  info.seed = static_cast<int64_t>(o.seed);
  info.config = run;
  info.config["kind"] = "train";
  info.config["out"] = fs::absolute(o.out).lexically_normal().string();
  id = store.begin_train_run(info, first_step);
  return store;
}

}  // namespace

int run_training(const TrainOptions& o, std::ostream& std_out) {
  if (o.model.empty() || o.data.empty() || o.out.empty()) {
    throw UsageError(
        "mla-bench train: give --model DIR, --data FILE.json and --out DIR "
        "(or --dry-run to print the trainable sets)");
  }
  if (o.stage < 0 || o.stage > 2) {
    throw UsageError(
        "mla-bench train: give --stage 1 or 2 (0: every parameter of an unconverted model)");
  }
  if ((o.steps > 0) == (o.epochs > 0)) {
    throw UsageError("mla-bench train: give one of --steps N or --epochs E");
  }
  if (o.batch < 1 || o.accum < 1) {
    throw UsageError("mla-bench train: --batch-size and --grad-accum must be >= 1");
  }
  if (o.lr <= 0) throw UsageError("mla-bench train: --lr must be > 0");
  // Data parallel under torchrun (training/distributed.hpp; docs/training.md "Data parallel"):
  // each rank joins the process group, trains on cuda:LOCAL_RANK with --device cuda and takes its
  // slice of every step's window; rank 0 alone prints, logs and writes checkpoints.
  models::VlmOptions vo;
  vo.device = models::parse_device(o.device);
  std::unique_ptr<training::DistributedContext> dist;
  if (const auto env = training::distributed_env_from_environment()) {
    if (vo.device.is_cuda()) {
      vo.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env->local_rank));
    }
    dist = std::make_unique<training::DistributedContext>(*env, vo.device);
  }
  const int64_t world = dist ? dist->world_size() : 1;
  const int64_t rank = dist ? dist->rank() : 0;
  std::ostream null_out(nullptr);
  std::ostream& out = rank == 0 ? std_out : null_out;
  fs::create_directories(o.out);
  std::optional<fs::path> checkpoint;
  if (o.resume) {
    checkpoint = training::latest_train_checkpoint(o.out);
    if (!checkpoint)
      out << "--resume: no checkpoint in " << o.out.string() << "; starting at step 0\n";
  }
  const fs::path load_dir = checkpoint ? *checkpoint : o.model;
  const ModelStage ms = model_stage(load_dir);
  if (ms.stage != o.stage) {
    throw Error(load_dir.string() + " is a " +
                (ms.stage == 0 ? std::string("model without MHA2MLA conversion")
                               : "stage-" + std::to_string(ms.stage) + " model") +
                ", not stage " + std::to_string(o.stage) +
                (o.stage == 0   ? ": stage 0 trains a model without MHA2MLA conversion"
                 : o.stage == 1 ? ": stage 1 trains the dir of `mla-bench convert --stage 1`"
                                : ": stage 2 trains the dir of `mla-bench convert --stage 2`"));
  }
  if (o.dtype != "auto" && !o.dtype.empty()) vo.dtype = models::parse_compute_dtype(o.dtype);
  auto model = models::Vlm::load(load_dir, vo);
  // --activation-checkpointing: each decoder layer recomputed in the backward (the rerun's
  // caches of the model's attention implementation, as prefill() makes them).
  model.decoder().set_activation_checkpointing(o.activation_checkpointing,
                                               model.options().attention);

  // Without --max-length, the model's positions bound a record (a longer one would run past
  // max_position_embeddings silently).
  training::TrainDataOptions dopt{.image_root = o.image_root, .max_length = o.max_length};
  dopt.prompt = o.prompt_format;
  if (dopt.max_length <= 0) {
    dopt.max_length = model.config().text.max_position_embeddings;
    dopt.max_length_name = "the model's max_position_embeddings";
  }
  training::TrainData data = training::read_train_data(o.data, dopt);
  int64_t skipped = 0;
  for (const auto& s : data.skipped) {
    if (o.strict) throw Error(o.data.string() + ": record " + s.id + ": " + s.reason);
    out << "skipping record " << s.id << ": " << s.reason << "\n";
    ++skipped;
  }
  const auto n = static_cast<int64_t>(data.records.size());
  if (n == 0) throw Error(o.data.string() + ": no usable record");
  const int64_t per_step = o.batch * o.accum;  // this rank's micro-batches per step
  const int64_t window = per_step * world;     // samples of the stream per optimizer step
  const int64_t total =
      o.steps > 0 ? o.steps
                  : static_cast<int64_t>(std::ceil(
                        o.epochs * static_cast<double>(std::max<int64_t>(n / window, 1))));

  std::optional<training::PeftVersion> peft;
  if (!o.peft.empty()) peft = training::parse_peft_version(o.peft);
  const auto set = training::TrainableSet::build(
      model.config(), {.stage = o.stage,
                       .peft = peft,
                       .rope_dim = ms.rope_dim > 0 ? ms.rope_dim : o.rope_dims,
                       .d_kv = ms.d_kv > 0 ? ms.d_kv : o.d_kv,
                       .freeze_vit = training::freeze_vit_for_stage(o.stage, o.train_vision,
                                                                    o.freeze_vision),
                       .freeze_aligner = o.freeze_aligner});
  // The vision tower's tensors that the forward never reads (CLIP's layers after
  // vision_feature_layer and its post_layernorm: Vlm::load does not keep them) get no gradient in
  // transformers either (torch.optim.AdamW skips a parameter whose grad is None): they stay as
  // loaded, and the checkpoint copies them from the source.
  std::set<std::string, std::less<>> loaded;
  for (const auto& [name, t] : model.named_parameters()) loaded.insert(name);
  std::vector<std::string> names;
  int64_t unused_vision = 0;
  for (const auto& p : set.parameters()) {
    if (!p.trainable) continue;
    if (p.group == "vision_tower" && !loaded.contains(p.name)) {
      ++unused_vision;
      continue;
    }
    names.push_back(p.name);
  }
  // The schedule: the authors' WSD with their ratios by default (warmup 0.1, decay from 0.9 over
  // 0.1, 1-sqrt), or transformers' cosine with warmup (from-scratch runs, docs/synth_models.md).
  const auto schedule = [&] {
    if (o.lr_schedule == "cosine") {
      return training::LrSchedule::cosine_with_warmup(
          o.lr, training::warmup_steps_from_ratio(o.warmup_ratio, total), total, 0.5,
          o.min_lr_ratio);
    }
    MLAB_CHECK(o.lr_schedule == "wsd", "--lr-schedule: wsd or cosine, got '", o.lr_schedule, "'");
    training::WsdSpec spec;
    spec.warmup_steps = o.warmup_ratio;
    spec.decay_starting_step = 1.0 - o.decay_ratio;
    spec.decay_steps = o.decay_ratio;
    spec.min_decay_lr = o.min_lr_ratio * o.lr;
    return training::LrSchedule::wsd(o.lr, spec, total);
  }();
  training::TrainerOptions topt;
  topt.adamw.weight_decay = o.weight_decay;
  topt.max_grad_norm = o.max_grad_norm;
  if (dist) topt.all_reduce_sum = [&](std::span<at::Tensor> t) { dist->all_reduce_sum(t); };
  training::Trainer trainer(
      model, names, [&](int64_t t) { return schedule.lr(t); }, topt);

  int64_t position = 0;  // samples of the stream consumed
  const json run = {{"stage", o.stage},
                    {"model", o.model.string()},
                    {"data", o.data.string()},
                    {"total_steps", total},
                    {"lr", o.lr},
                    {"lr_schedule", o.lr_schedule},
                    {"prompt_format", o.prompt_format},
                    {"warmup_ratio", o.warmup_ratio},
                    {"decay_ratio", o.decay_ratio},
                    {"min_lr_ratio", o.min_lr_ratio},
                    {"batch_size", o.batch},
                    {"grad_accum", o.accum},
                    {"seed", o.seed},
                    {"weight_decay", o.weight_decay},
                    {"max_grad_norm", o.max_grad_norm},
                    {"world_size", world}};
  if (checkpoint) {
    const json state = training::load_train_state(*checkpoint, trainer);
    position = state.at("position").get<int64_t>();
    const json& was = state.at("run");
    for (const char* key :
         {"total_steps", "lr", "batch_size", "grad_accum", "seed", "world_size", "prompt_format"}) {
      if (was.contains(key) && was.at(key) != run.at(key)) {
        out << "warning: --resume with " << key << " " << run.at(key).dump()
            << ", the checkpoint's "
            << "run had " << was.at(key).dump() << "\n";
      }
    }
    out << "resumed from " << checkpoint->string() << " at step " << trainer.steps_done() << "\n";
  }
  const fs::path log_path = o.out / "train_log.jsonl";
  std::ofstream log;  // rank 0's
  if (rank == 0) {
    if (checkpoint) {
      truncate_log(log_path, trainer.steps_done());
    } else {
      std::ofstream(log_path, std::ios::trunc);
    }
    log.open(log_path, std::ios::app);
  }
  // Rank 0 stores one row per step in --db, each in its own transaction (a kill loses at most
  // the step in progress); a resumed run drops the steps from its checkpoint on, as the log.
  std::optional<results::ResultsStore> store;
  int64_t store_run = 0;
  double last_elapsed = 0;
  if (rank == 0 && !o.db.empty()) {
    store.emplace(open_train_store(o, run, vo.device, trainer.steps_done(), store_run));
    out << "training run " << store_run << " in " << o.db.string() << "\n";
  }

  out << "train stage " << o.stage << ": " << names.size() << " trainable tensors, "
      << set.trainable_parameters() << " of " << set.total_parameters() << " parameters; " << n
      << " records (" << data.skipped.size() << " skipped while reading); " << total << " steps of "
      << o.batch << " x " << o.accum << " samples"
      << (dist ? " x " + std::to_string(world) + " ranks (" + dist->backend() + ")" : "")
      << "; peak lr " << o.lr << " (" << o.lr_schedule << ")\n";
  if (unused_vision > 0) {
    out << unused_vision << " vision-tower tensors the forward does not read (after "
        << "vision_feature_layer) stay as loaded\n";
  }
  auto save = [&] {
    if (rank != 0) return;
    json state = {{"position", position}, {"run", run}, {"skipped_records", skipped}};
    const fs::path dir = training::save_train_checkpoint(o.out, load_dir, trainer, state);
    out << "saved " << dir.string() << "\n";
  };
  const auto start = std::chrono::steady_clock::now();
  const int64_t first = trainer.steps_done();
  int64_t last_saved = checkpoint ? first : -1;
  const int64_t stop = o.stop_after > 0 ? std::min(total, o.stop_after) : total;
  // The step's window is the next `window` encodable records of the stream; rank r trains on
  // its micro-batches [r * per_step, (r + 1) * per_step). Every rank encodes the whole window,
  // so all agree on the records skipped and on the stream position. Encoding (tokenizer, image
  // processor: CPU) runs on a second thread one step ahead, as a DataLoader worker does, so the
  // device is not idle while the next window's images are resized; it reads only `data`, the
  // tokenizer and the processor (thread-safe, immutable) and reports skips back in order.
  struct Window {
    std::vector<training::TrainBatch> micro;                 // this rank's, on the CPU
    int64_t position = 0;                                    // the stream position after the window
    std::vector<std::pair<std::string, std::string>> skips;  // (record id, reason)
  };
  auto encode_window = [&, rank](int64_t pos) {
    Window w;
    int64_t failures = 0, taken = 0;
    while (taken < window) {
      const auto& rec =
          data.records[static_cast<std::size_t>(training::stream_index(pos++, n, o.seed))];
      try {
        training::TrainBatch b = training::make_train_batch(model, rec, dopt);
        if (taken++ / per_step == rank) w.micro.push_back(std::move(b));
        failures = 0;
      } catch (const Error& e) {
        if (o.strict) throw Error(o.data.string() + ": record " + rec.id + ": " + e.what());
        w.skips.emplace_back(rec.id, e.what());
        if (++failures > n) throw Error(o.data.string() + ": no record could be encoded");
      }
    }
    w.position = pos;
    return w;
  };
  std::future<Window> next;
  if (trainer.steps_done() < stop) next = std::async(std::launch::async, encode_window, position);
  while (trainer.steps_done() < stop) {
    Window w = next.get();
    for (const auto& [id, reason] : w.skips) {
      out << "skipping record " << id << ": " << reason << "\n";
      ++skipped;
    }
    position = w.position;
    if (trainer.steps_done() + 1 < stop) {
      next = std::async(std::launch::async, encode_window, position);
    }
    std::vector<training::TrainBatch> micro = std::move(w.micro);
    for (auto& b : micro) {
      for (at::Tensor* t : {&b.inputs.input_ids, &b.inputs.attention_mask, &b.inputs.pixel_values,
                            &b.inputs.image_sizes, &b.inputs.image_grid_thw, &b.labels}) {
        if (t->defined()) *t = t->to(vo.device);
      }
    }
    // --batch-size B: each B records right-padded into one B-row micro-batch as swift's training
    // collator does (training/train_batch.hpp); --grad-accum micro-batches per step.
    micro = training::collate_in_groups(micro, o.batch, model.pad_token_id());
    training::StepLog s;
    try {
      s = trainer.step(micro);
    } catch (const Error& e) {
      const auto last = training::latest_train_checkpoint(o.out);
      throw Error(std::string("training stopped: ") + e.what() +
                  "; last checkpoint: " + (last ? last->string() : std::string("none")));
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int64_t done = trainer.steps_done() - first;
    const double tps = elapsed > 0 ? static_cast<double>(s.tokens) * done / elapsed : 0;
    const double eta =
        done > 0 ? elapsed / done * static_cast<double>(total - trainer.steps_done()) : 0;
    char line[256];
    std::snprintf(line, sizeof line,
                  "step %lld/%lld loss %.6f lr %.3e grad_norm %.4f tokens/s %.0f eta %s\n",
                  static_cast<long long>(trainer.steps_done()), static_cast<long long>(total),
                  s.loss, s.lr, s.grad_norm, tps, clock(eta).c_str());
    out << line << std::flush;
    json record{{"step", s.step},           {"loss", s.loss},     {"lr", s.lr},
                {"grad_norm", s.grad_norm}, {"tokens", s.tokens}, {"supervised", s.supervised},
                {"elapsed_s", elapsed}};
    // torch.cuda.max_memory_allocated of this process since it started (tools/cuda/train_bench.py).
    if (vo.device.is_cuda())
      record["cuda_peak_bytes"] =
          compat::cuda_peak_allocated_bytes(vo.device.has_index() ? vo.device.index() : 0);
    log << record.dump() << "\n" << std::flush;
    if (store) {
      const double step_s = elapsed - last_elapsed;
      store->add_train_step(store_run, {.step = s.step,
                                        .loss = s.loss,
                                        .lr = s.lr,
                                        .grad_norm = s.grad_norm,
                                        .tokens = s.tokens,
                                        .supervised = s.supervised,
                                        .tokens_per_s = step_s > 0 ? s.tokens / step_s : 0,
                                        .elapsed_s = elapsed});
    }
    last_elapsed = elapsed;
    if (o.save_every > 0 && trainer.steps_done() % o.save_every == 0) {
      save();
      last_saved = trainer.steps_done();
    }
  }
  if (last_saved != trainer.steps_done()) save();
  if (store && trainer.steps_done() >= total) store->finish_train_run(store_run);
  if (dist) dist->barrier();   // the other ranks end when rank 0 has written the checkpoint
  if (!o.eval_data.empty()) {  // held-out loss of the final weights (training/evaluate_loss.hpp)
    const auto held =
        training::evaluate_loss(model, training::read_train_data(o.eval_data, dopt).records, dopt);
    out << "held-out loss " << held.loss << " (" << held.records << " records, " << held.supervised
        << " supervised tokens, of " << o.eval_data.string() << ")\n";
  }
  out << "done: " << trainer.steps_done() << " steps; " << skipped << " record(s) skipped\n";
  return 0;
}

}  // namespace mlab::harness
