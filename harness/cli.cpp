#include "harness/cli.hpp"

#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "datasets/image.hpp"
#include "harness/commands.hpp"

namespace mlab::harness {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// A subcommand whose options are declared (so --help documents them) but whose implementation
// arrives with a later issue.
struct Planned {
  CLI::App* app;
  std::string issue;
};

// --max-image-pixels on the commands that decode images (datasets::set_max_image_pixels; F11 D3).
void add_max_image_pixels(CLI::App* cmd) {
  cmd->add_option_function<int64_t>(
         "--max-image-pixels", [](const int64_t& v) { datasets::set_max_image_pixels(v); },
         "Refuse images of more pixels than this before decoding them (decompression bombs; "
         "default " + std::to_string(datasets::kDefaultMaxImagePixels) +
             ", Pillow's limit; 0: none)")
      ->check(CLI::NonNegativeNumber);
}

struct Cli {
  CLI::App app{"MLA-Bench: KV-cache compression for vision-language models (MHA2MLA-VLM and peers)",
               "mla-bench"};
  std::vector<Planned> planned;
  std::function<int()> action;
  bool verbose = false;

  // Option storage of the planned subcommands (parsed, unused until implemented).
  std::string s1, s2, s3, s4, s5, s6;
  int64_t n1 = 0, n2 = 0, n3 = 0;
  double x1 = 0;
  bool b1 = false;

  ListOptions list;
  InspectOptions inspect;
  QuickstartOptions quickstart;
  SelftestOptions selftest;

  CLI::App* planned_command(const std::string& name, const std::string& doc,
                            const std::string& issue) {
    auto* sub = app.add_subcommand(name, doc + " [not implemented yet: " + issue + "]");
    planned.push_back({sub, issue});
    return sub;
  }

  Cli(std::ostream& out) {
    app.require_subcommand(1);
    app.add_flag("-v,--verbose", verbose, "Print full error details (C++ backtraces)");
    app.set_version_flag("--version", std::string("mla-bench ") + MLAB_VERSION);

    // --- implemented ---
    auto* list_cmd = app.add_subcommand("list", "Print what a registry holds, with one-line docs");
    list_cmd->add_option("what", list.what, "models | methods | tasks | metrics")->required();
    list_cmd->callback([this, &out] { action = [this, &out] { return run_list(list, out); }; });

    auto* inspect_cmd = app.add_subcommand(
        "inspect", "Summarize a Hugging Face model dir, checkpoint or config.json");
    inspect_cmd->add_option("path", inspect.path, "model dir, .safetensors file or config.json")
        ->required();
    inspect_cmd->add_flag("--json", inspect.json, "JSON output");
    inspect_cmd->add_flag("--check", inspect.check, "Read every tensor (finds truncated data)");
    inspect_cmd->callback(
        [this, &out] { action = [this, &out] { return run_inspect(inspect, out); }; });

    auto* quick_cmd = app.add_subcommand(
        "quickstart",
        "The main job: the paper's Table 2 in miniature on a CPU (synthetic suite, the shipped "
        "demo VLM converted to MLA and fine-tuned, every KV method compared, dashboard)");
    quickstart.model =
        std::filesystem::path(MLAB_SOURCE_DIR) / "assets" / "models" / "mlab-llava-synth";
    quickstart.work_dir = "mla-bench-quickstart";
    quick_cmd->add_option("--model", quickstart.model, "The MHA/GQA model to convert and compare")
        ->capture_default_str();
    quick_cmd
        ->add_option("--work-dir", quickstart.work_dir,
                     "Where outputs are written (a rerun reuses what is there)")
        ->capture_default_str();
    quick_cmd->add_option("--device", quickstart.device, "cpu | cuda")->capture_default_str();
    quick_cmd->add_option("--threads", quickstart.threads,
                          "Intra-op threads (0: LibTorch default)");
    quick_cmd->add_option("--seed", quickstart.seed, "Seed of the synthetic suite")
        ->capture_default_str();
    quick_cmd->add_option("--samples", quickstart.samples, "Eval samples per task")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    quick_cmd->add_option("--train-samples", quickstart.train_samples,
                          "Fine-tuning records per task")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    quick_cmd->add_option("--d-kv", quickstart.d_kv, "Latent dims per KV head (one MLA model each)")
        ->delimiter(',')
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    quick_cmd->add_option("--rope-dims", quickstart.rope_dims, "RoPE dims kept per head (r)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    quick_cmd->add_option("--steps", quickstart.steps, "Optimizer steps per fine-tuning stage")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    quick_cmd->add_option("--batch", quickstart.batch, "Fine-tuning rows per step")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    quick_cmd->add_option("--lr", quickstart.lr, "Peak learning rate of both stages")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    quick_cmd->add_option("--quant-residual", quickstart.quant_residual,
                          "Quanto/HQQ full-precision residual window (tokens)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    quick_cmd
        ->add_option("--prompt-format", quickstart.prompt_format,
                     "Fine-tuning prompt format: chat (the evaluation prompt, the format the "
                     "shipped demo models were trained in) | swift (the authors' template)")
        ->check(CLI::IsMember({"swift", "chat"}))
        ->capture_default_str();
    quick_cmd->add_option("--eval-batch", quickstart.eval_batch, "Eval rows per batch")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    quick_cmd->add_option("--db", quickstart.db, "Results database (default: <work-dir>/results.sqlite)");
    quick_cmd->add_option("--run-prefix", quickstart.run_prefix,
                          "Runs are named <prefix>/<configuration> (a rerun of a name resumes)")
        ->capture_default_str();
    quick_cmd->add_option("--series-prefix", quickstart.series_prefix,
                          "Dashboard series <prefix>/<configuration> (default: --run-prefix); "
                          "tools/nightly.sh keeps one series per configuration across nights");
    quick_cmd->callback(
        [this, &out] { action = [this, &out] { return run_quickstart(quickstart, out); }; });

    auto* self_cmd = app.add_subcommand(
        "selftest", "Quick checks of this build and machine: configs, checkpoint round trip, "
                    "kernel vs reference, the tiny fixture VLMs");
    selftest.configs_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "models";
    selftest.work_dir = "mla-bench-selftest";
    self_cmd->add_option("--configs", selftest.configs_dir, "Directory of model config.json files")
        ->capture_default_str();
    self_cmd->add_option("--work-dir", selftest.work_dir, "Where outputs are written")
        ->capture_default_str();
    self_cmd->add_option("--device", selftest.device, "cpu | cuda")->capture_default_str();
    self_cmd->add_option("--threads", selftest.threads, "Intra-op threads (0: LibTorch default)");
    self_cmd->add_option("--seed", selftest.seed, "Random seed")->capture_default_str();
    self_cmd->callback(
        [this, &out] { action = [this, &out] { return run_selftest(selftest, out); }; });

    // --- declared, implemented by later issues ---
    auto conv = std::make_shared<ConvertOptions>();
    auto* convert = app.add_subcommand("convert", "Convert an MHA/GQA VLM to MLA (MHA2MLA-VLM)");
    convert->add_option("--model", conv->model, "Input model directory")->required();
    convert->add_option("--out", conv->out, "Output model directory")->required();
    convert
        ->add_option("--rope", conv->rope,
                     "Partial-RoPE strategy: mkl | 2norm | high | low | uniform")
        ->capture_default_str();
    convert->add_option("--rope-dims", conv->rope_dims, "RoPE dims kept per head (r)")
        ->capture_default_str();
    convert->add_option("--ranks", conv->ranks,
                        "Rank file (configs/mha2mla/ranks/*.safetensors) instead of scoring");
    convert->add_option("--stage", conv->stage, "1 = partial RoPE only, 2 = MLA")
        ->capture_default_str();
    convert->add_option("--d-kv", conv->d_kv, "Latent dims per KV head")->capture_default_str();
    convert
        ->add_option("--svd", conv->svd,
                     "Latent init: md (MD-SVD, the paper's) | activation (activation-aware SVD of "
                     "both modalities together; 'joint' before F14) | weight (plain SVD: the "
                     "authors' svd_init_method 'joint')")
        ->capture_default_str();
    convert
        ->add_option("--format", conv->format,
                     "config.json dialect: authors (their arguments.py block: their "
                     "train_stage2.py and lmms-eval load the dir) | mlab (our keys only)")
        ->check(CLI::IsMember({"authors", "mlab"}))
        ->capture_default_str();
    convert->add_option("--calib", conv->calib, "Calibration dataset dir (docs/formats.md)");
    convert->add_option("--calib-data", conv->calib_data,
                        "Calibration from fine-tuning data instead: a LLaVA / swift JSON or JSONL "
                        "file as `train --data` reads (each record in the training template)");
    convert->add_option("--calib-image-root", conv->calib_image_root,
                        "--calib-data: root of its image paths (default: the file's dir)");
    convert
        ->add_option("--calib-format", conv->calib_format,
                     "train: each sample's question, images AND answer in the model's training "
                     "template (ms-swift's, as the authors' run_svd_init.py encodes calibration "
                     "data) | eval: question and images in the evaluation prompt")
        ->check(CLI::IsMember({"train", "eval"}))
        ->capture_default_str();
    convert
        ->add_option("--calib-samples,--calib-limit", conv->calib_samples,
                     "Calibration samples: the first N of the dataset in seeded random order (0: "
                     "all; the authors' total_num)")
        ->check(CLI::Validator(
            [](std::string& v) {
              return v.empty() || v[0] != '-' ? std::string() : "must be >= 0 (0: all), got " + v;
            },
            "N>=0"))  // F11 D14 (0 stays "all", as documented)
        ->capture_default_str();
    convert
        ->add_option("--calib-seed", conv->calib_seed,
                     "Seed of the sample order: torch.randperm(n, generator=manual_seed(S)), as "
                     "the authors' seed 42 (their DataLoader order also depends on their model "
                     "construction's RNG draws, so their exact order is not reproducible)")
        ->capture_default_str();
    convert->add_option("--mkl-queries", conv->mkl_queries, "MKL: query positions per sample")
        ->capture_default_str();
    convert
        ->add_option("--mkl-samples", conv->mkl_samples,
                     "MKL: score on the first N calibration samples (0: all)")
        ->capture_default_str();
    convert->add_option("--device", conv->device, "cpu | cuda")->capture_default_str();
    convert->add_option("--dtype", conv->dtype, "Model precision during conversion")
        ->capture_default_str();
    convert->add_option("--threads", conv->threads, "Intra-op threads (0: LibTorch default)");
    convert->add_option("--report", conv->report, "Write losses, scores and timings as JSON");
    convert->callback(
        [this, conv, &out] { action = [conv, &out] { return run_convert(*conv, out); }; });

    auto tr = std::make_shared<TrainOptions>();
    tr->paper_params =
        std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "paper" / "trainable_params.json";
    auto* train = app.add_subcommand(
        "train",
        "Two-stage parameter-efficient fine-tuning of a converted model (--dry-run: each stage's "
        "trainable parameters)");
    train->footer(
        "--dry-run: every parameter of the stage-1 (partial RoPE) and stage-2 (MLA) model, by "
        "group, with the trainable ones as the authors' train_stage{1,2}.py set them "
        "(freeze_non_attn_weights with peft_train v4 / v2, lm_head frozen, swift's freeze_vit "
        "and freeze_aligner: vision tower frozen, projector trained; docs/training.md), computed "
        "from config.json alone, beside the paper's Tables 5-6 #Param. for its three models. "
        "Without --dry-run it fine-tunes --model (docs/training.md).");
    train->add_flag("--dry-run", tr->dry_run,
                    "Print the trainable parameter sets (no data, no weights, no training)");
    train->add_option("--model-config", tr->model_config,
                      "--dry-run: config.json, or a model dir holding one (default: --model)");
    train->add_option("--model", tr->model, "Model directory");
    train->add_option("--stage", tr->stage,
                      "1 (partial RoPE) or 2 (MLA); 0: every parameter of an unconverted model "
                      "(training from scratch); --dry-run: stages 1 and 2 if absent")
        ->check(CLI::Range(0, 2));
    train->add_option("--peft", tr->peft,
                      "The authors' peft_train: v2 | v3 | v4 | v5 | v6 | none (default: v4 for "
                      "stage 1, v2 for stage 2, as their cfgs)");
    train->add_option("--rope-dims", tr->rope_dims, "RoPE dims kept per head (r)")
        ->capture_default_str();
    train->add_option("--d-kv", tr->d_kv, "Stage 2: latent dims per KV head")
        ->capture_default_str();
    train->add_flag("--freeze-aligner", tr->freeze_aligner,
                    "Freeze the projector too (swift's freeze_aligner; the authors train it)");
    train->add_flag("--train-vision", tr->train_vision,
                    "Train the vision tower (swift's freeze_vit false; the authors freeze it)");
    train->add_flag("--freeze-vision", tr->freeze_vision,
                    "Stage 0: keep the vision tower frozen (stage 0 trains it by default)");
    train->add_flag("--parameters", tr->list_parameters,
                    "--dry-run: also list every tensor with its shape and trainable flag");
    train->add_flag("--json", tr->json, "--dry-run: one JSON object");
    train->add_option("--paper-params", tr->paper_params,
                      "The paper's #Param. figures to compare with")
        ->capture_default_str();
    train->add_option("--data", tr->data,
                      "LLaVA-format instruction JSON/JSONL (or swift's messages/images)");
    train->add_option("--image-root", tr->image_root,
                      "Directory the data's image paths are relative to (default: the data's)");
    train->add_option("--out", tr->out, "Output directory: checkpoint-<step>/, train_log.jsonl");
    train->add_option("--eval-data", tr->eval_data,
                      "Held-out records (as --data): their loss under the final weights, printed "
                      "at the end");
    train->add_option("--steps", tr->steps, "Optimizer steps");
    train->add_option("--epochs", tr->epochs, "Epochs (instead of --steps)");
    train->add_option("--lr", tr->lr, "Peak learning rate of the schedule")->capture_default_str();
    train->add_option("--prompt-format", tr->prompt_format,
                      "How records become ids: swift (the authors' training template) | chat "
                      "(the evaluation prompt, then the answer and EOS: for models trained from "
                      "scratch, whose only prompt format is eval's)")
        ->check(CLI::IsMember({"swift", "chat"}))
        ->capture_default_str();
    train->add_option("--lr-schedule", tr->lr_schedule,
                      "wsd (the authors': warmup, constant, 1-sqrt decay) | cosine (with warmup)")
        ->check(CLI::IsMember({"wsd", "cosine"}))
        ->capture_default_str();
    train->add_option("--warmup-ratio", tr->warmup_ratio, "Linear warmup, share of the steps")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    train->add_option("--decay-ratio", tr->decay_ratio, "wsd: the decay, share of the last steps")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    train->add_option("--min-lr-ratio", tr->min_lr_ratio, "The final LR as a share of --lr")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    train->add_option("--batch-size,--batch", tr->batch, "Rows per optimizer step per accumulation micro-step")
        ->capture_default_str();
    train->add_option("--grad-accum,--accum", tr->accum, "Gradient accumulation steps")
        ->capture_default_str();
    train->add_option("--weight-decay", tr->weight_decay, "AdamW weight decay")->capture_default_str();
    train->add_option("--max-grad-norm", tr->max_grad_norm, "Clip the global grad norm (<= 0: off)")
        ->capture_default_str();
    train->add_option("--seed", tr->seed, "Seed of the sample order")->capture_default_str();
    train->add_option("--save-every", tr->save_every, "Checkpoint every N steps (and at the end)");
    train->add_option("--stop-after", tr->stop_after,
                      "Stop after this step (checkpointed; the schedule still spans all steps)");
    train->add_option("--max-length", tr->max_length, "Skip records longer than this (tokens)");
    train->add_flag("--resume", tr->resume, "Continue from the latest checkpoint in --out");
    train->add_flag("--strict", tr->strict, "A bad record is fatal (exit 1 naming it)");
    train->add_flag("--activation-checkpointing", tr->activation_checkpointing,
                    "Keep no activations inside the decoder layers; the backward recomputes "
                    "each layer (HF gradient_checkpointing: same losses, less memory, about one "
                    "more forward of compute)");
    train->add_option("--db", tr->db,
                      "Results database (e.g. results.sqlite, as eval's): a training run and one "
                      "row per step (loss, lr, grad norm, tokens/s), drawn by `mla-bench "
                      "dashboard`; none without it");
    train->add_option("--run-name", tr->run_name,
                      "Training run name in --db (default: train:<absolute --out dir>; --resume "
                      "continues it)");
    train->add_option("--device", tr->device, "cpu | cuda[:N]")->capture_default_str();
    train->add_option("--dtype", tr->dtype, "auto | float32 | bfloat16 | float16")->capture_default_str();
    train->callback([this, tr, &out] { action = [tr, &out] { return run_train(*tr, out); }; });

    auto mo = std::make_shared<Mha2mlaOptions>();
    auto* pipe = app.add_subcommand(
        "mha2mla",
        "The MHA2MLA-VLM pipeline: partial RoPE -> stage 1 -> MD-SVD on the stage-1 model -> "
        "stage 2, each step resumable");
    pipe->footer(
        "Writes OUT/stage1_init (convert --stage 1), OUT/stage1 (train --stage 1), OUT/stage2_init "
        "(convert --stage 2 --svd md from stage 1's last checkpoint, calibrated on --data) and "
        "OUT/stage2 (train --stage 2), and OUT/pipeline.json recording each finished step. "
        "Defaults are the authors' (cfgs/stage{1,2}.yaml, run_svd_init.sh) for the model's "
        "family; see docs/training.md.");
    pipe->add_option("--model", mo->model, "Source model directory (MHA / GQA)")->required();
    pipe->add_option("--data", mo->data,
                     "Fine-tuning data: LLaVA or swift JSON / JSONL (as train --data); also the "
                     "calibration data of MD-SVD")
        ->required();
    pipe->add_option("--out", mo->out, "Output directory")->required();
    pipe->add_option("--eval-data", mo->eval_data,
                     "Held-out records (same format): the loss of every step's model");
    pipe->add_option("--image-root", mo->image_root, "Root of image paths (default: the data "
                                                     "file's dir)");
    pipe->add_option("--rope", mo->rope, "Stage-1 keep-sets: high | low | uniform | 2norm | mkl")
        ->check(CLI::IsMember({"high", "low", "uniform", "2norm", "mkl"}))
        ->capture_default_str();
    pipe->add_option("--ranks", mo->ranks, "Rank file instead of scoring (their qk_tensor_path)");
    pipe->add_option("--rope-dims", mo->rope_dims, "RoPE dims kept per head (r)")
        ->capture_default_str();
    pipe->add_option("--d-kv", mo->d_kv,
                     "Latent dims per KV head (default: the authors' for the family: llava 64, "
                     "llava_next / qwen2_5_vl 128)");
    pipe->add_option("--stage1-steps", mo->stage1_steps, "Stage-1 optimizer steps");
    pipe->add_option("--stage1-epochs", mo->stage1_epochs, "Stage-1 epochs (default 1)");
    pipe->add_option("--stage2-steps", mo->stage2_steps, "Stage-2 optimizer steps");
    pipe->add_option("--stage2-epochs", mo->stage2_epochs, "Stage-2 epochs (default 1)");
    pipe->add_option("--lr1", mo->lr1,
                     "Stage-1 peak LR (default: the authors': llava 5e-5, llava_next 5e-6, "
                     "qwen2_5_vl 1e-5)");
    pipe->add_option("--lr2", mo->lr2,
                     "Stage-2 peak LR (default: the authors' for the family and d_kv)");
    pipe->add_option("--batch-size,--batch", mo->batch, "Rows per accumulation micro-step")
        ->capture_default_str();
    pipe->add_option("--grad-accum,--accum", mo->accum, "Gradient accumulation steps")
        ->capture_default_str();
    pipe->add_option("--max-length", mo->max_length, "Skip records longer than this (tokens)")
        ->capture_default_str();
    pipe->add_option("--calib-samples", mo->calib_samples,
                     "Calibration records: the first N of --data in seeded order (0: all)")
        ->capture_default_str();
    pipe->add_option("--calib-seed", mo->calib_seed, "Seed of the calibration order")
        ->capture_default_str();
    pipe->add_option("--mkl-samples", mo->mkl_samples, "MKL: score on the first N (0: all)")
        ->capture_default_str();
    pipe->add_option("--seed", mo->seed, "Stage-1 sample order")->capture_default_str();
    pipe->add_option("--stage2-seed", mo->stage2_seed,
                     "Stage-2 sample order (their data_seed)")
        ->capture_default_str();
    pipe->add_option("--prompt-format", mo->prompt_format,
                     "Fine-tuning: swift (the authors' training template) | chat (the evaluation "
                     "prompt + answer + EOS: models trained from scratch in that format, e.g. the "
                     "shipped demo models); MD-SVD calibrates on swift's template either way")
        ->check(CLI::IsMember({"swift", "chat"}))
        ->capture_default_str();
    pipe->add_option("--save-every", mo->save_every,
                     "Training checkpoints every N steps (0: at the end of each stage)");
    pipe->add_option("--stop-after-step", mo->stop_after_step,
                     "Stop after this step: stage1_init | stage1 | stage2_init");
    pipe->add_flag("--resume", mo->resume,
                   "Skip finished steps; an unfinished training step resumes from its latest "
                   "checkpoint");
    pipe->add_option("--device", mo->device, "cpu | cuda[:N]")->capture_default_str();
    pipe->add_option("--dtype", mo->dtype,
                     "Training and held-out precision: auto | float32 | bfloat16 | float16 "
                     "(conversion runs in float32)")
        ->capture_default_str();
    pipe->add_option("--threads", mo->threads, "Intra-op threads (0: LibTorch default)");
    pipe->callback([this, mo, &out] { action = [mo, &out] { return run_mha2mla(*mo, out); }; });

    auto ev = std::make_shared<EvalOptions>();
    ev->configs_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "tasks";
    auto* eval =
        app.add_subcommand("eval", "Evaluate a model on benchmarks into SQLite (resumable)");
    eval->add_option("--model", ev->model, "Model directory")->required();
    eval->add_option("--tasks", ev->tasks, "Comma-separated tasks (see: mla-bench list tasks)")
        ->required();
    eval->add_option("--datasets", ev->datasets,
                     "Root holding one dataset dir per task (<root>/<task>/)")
        ->required();
    eval->add_option("--methods", ev->methods,
                     "Comma-separated method stacks, one run each, e.g. "
                     "full,h2o:budget=0.375,quanto:bits=4,mha2mla+hqq:bits=4 (mla-bench list "
                     "methods: every option and its default); default: the --paper-row's "
                     "method_spec, else full");
    eval->add_option("--db", ev->db, "Results database (SQLite)")->capture_default_str();
    eval->add_option("--run-name", ev->run_name, "Run name; a rerun with the same name resumes");
    eval->add_option("--limit", ev->limit, "At most N samples per task (0: all)")
        ->check(CLI::Validator(
            [](std::string& v) {
              return v.empty() || v[0] != '-' ? std::string() : "must be >= 0 (0: all), got " + v;
            },
            "N>=0"));  // F11 D14
    eval->add_option("--batch-size", ev->batch_size, "Samples per batch (left padded)")
        ->capture_default_str();
    eval->add_option("--device", ev->device, "cpu | cuda")->capture_default_str();
    eval->add_option("--dtype", ev->dtype, "auto | float32 | bfloat16 | float16")
        ->capture_default_str();
    eval->add_option("--processor", ev->processor,
                     "Image processor to reproduce: transformers-5 (PIL backend, Pillow 13) | "
                     "transformers-4.51 (the slow processor + Pillow 10.4 the paper's numbers "
                     "were produced with); recorded in the run config")
        ->capture_default_str();
    eval->add_option("--threads", ev->threads, "Intra-op threads (0: LibTorch default)");
    eval->add_option("--seed", ev->seed, "Random seed (recorded)")->capture_default_str();
    eval->add_option("--configs", ev->configs_dir, "Directory of task configs")
        ->capture_default_str();
    eval->add_flag("--skip-bad", ev->skip_bad,
                   "Record bad dataset samples as failed samples and continue (never dropped)");
    add_max_image_pixels(eval);
    eval->add_flag("--blank-images", ev->blank_images,
                   "Replace every image by a white one of its size (does the model use the "
                   "images? It should fall to chance); recorded in the run config");
    eval->add_option("--rank", ev->rank,
                     "This shard (default: torchrun's RANK, else 0); shard r takes the samples "
                     "at positions p with p mod world-size == r");
    eval->add_option("--world-size", ev->world_size,
                     "Number of shards writing to the one database (default: torchrun's "
                     "WORLD_SIZE, else 1)");
    eval->add_option("--db-timeout", ev->db_timeout_s,
                     "Seconds a database write waits for another process's lock")
        ->capture_default_str();
    eval->add_option("--paper-row", ev->paper_row,
                     "The paper table cell row this run fills, e.g. table1/llava15_7b/original "
                     "(see: mla-bench report)")
        // F11 D14: an unknown table or row is refused at parse time (exit 2), also with
        // --methods (then eval itself never reads the table); configs/paper/table<N>.json.
        ->check(CLI::Validator(
            [](std::string& row) -> std::string {
              const auto slash = row.find('/');
              const auto dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "paper";
              const std::string tables = "tables: table1, table2, table3, table4";
              if (row.rfind("table", 0) != 0 || slash == std::string::npos) {
                return "must be table<N>/<row id> (e.g. table1/llava15_7b/original; " + tables +
                       "), got '" + row + "'";
              }
              const auto file = dir / (row.substr(0, slash) + ".json");
              std::ifstream in(file);
              if (!in.good()) {
                return "'" + row + "': no table " + row.substr(0, slash) + " (" + tables + ")";
              }
              const auto table = nlohmann::json::parse(in, nullptr, false);
              std::vector<std::string> ids;
              if (table.is_object() && table.contains("rows") && table.at("rows").is_array()) {
                for (const auto& r : table.at("rows")) {
                  if (r.is_object()) ids.push_back(r.value("id", std::string()));
                }
              }
              const std::string id = row.substr(slash + 1);
              if (std::find(ids.begin(), ids.end(), id) != ids.end()) return {};
              return "'" + row + "': " +
                     unknown_name_message("row of " + row.substr(0, slash), id, ids);
            },
            "TABLE/ROW"));
    eval->add_option("--series", ev->series,
                     "Dashboard series this run belongs to (e.g. nightly-llava); default: model "
                     "+ methods + dtype");
    eval->callback([this, ev, &out] { action = [ev, &out] { return run_eval(*ev, out); }; });

    auto rp = std::make_shared<ReportOptions>();
    rp->tables_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "paper";
    auto* report = app.add_subcommand(
        "report", "Print the paper's Tables 1-4 beside the database's runs, with differences");
    report->add_option("--db", rp->db, "Results database (absent: paper numbers only)");
    report->add_option("--table", rp->table, "1|2|3|4|all")->capture_default_str();
    report->add_option("--format", rp->format, "md|csv|html")->capture_default_str();
    report->add_option("--tables", rp->tables_dir, "Directory of the paper tables (table<N>.json)")
        ->capture_default_str();
    report->callback([this, rp, &out] { action = [rp, &out] { return run_report(*rp, out); }; });

    auto db_opts = std::make_shared<DashboardOptions>();
    db_opts->configs_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "tasks";
    auto* dashboard = app.add_subcommand(
        "dashboard", "Write a static HTML dashboard (inline SVG, viewable offline) of a database");
    dashboard->add_option("--db", db_opts->db, "Results database")->capture_default_str();
    dashboard->add_option("--out", db_opts->out, "Output directory")->capture_default_str();
    dashboard
        ->add_option("--tolerance", db_opts->tolerance,
                     "A drop beyond this between consecutive runs of a series is marked")
        ->capture_default_str();
    dashboard
        ->add_option("--speed-tolerance", db_opts->speed_tolerance,
                     "Timings (tokens/s, latency): a relative slowdown beyond this is marked")
        ->capture_default_str();
    dashboard->add_option("--title", db_opts->title, "Page title")->capture_default_str();
    dashboard->add_option("--configs", db_opts->configs_dir, "Directory of task configs")
        ->capture_default_str();
    dashboard->callback([this, db_opts, &out] {
      action = [db_opts, &out] { return run_dashboard(*db_opts, out); };
    });

    auto ex = std::make_shared<ExportOptions>();
    ex->configs_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "tasks";
    auto* export_cmd = app.add_subcommand(
        "export", "Write a stored run as lmms-eval's results.json and samples_<task>.jsonl");
    export_cmd->add_option("--db", ex->db, "Results database")->capture_default_str();
    export_cmd->add_option("--run", ex->run, "Run name")->required();
    export_cmd->add_option("--out", ex->out_dir, "Output directory")->required();
    export_cmd->add_option("--configs", ex->configs_dir, "Directory of task configs")
        ->capture_default_str();
    export_cmd->callback(
        [this, ex, &out] { action = [ex, &out] { return run_export(*ex, out); }; });

    auto rg = std::make_shared<RegressOptions>();
    rg->configs_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "tasks";
    auto* regress =
        app.add_subcommand("regress", "Compare two runs; exit 1 on a drop beyond tolerance");
    regress->add_option("--db", rg->db, "Results database")->capture_default_str();
    regress->add_option("--baseline", rg->baseline, "Baseline run name")->required();
    regress->add_option("--candidate", rg->candidate, "Candidate run name")->required();
    regress
        ->add_option("--tolerance", rg->tolerance,
                     "Allowed drop in the metric's units (KV bytes per token: relative growth)")
        ->capture_default_str();
    regress->add_option("--configs", rg->configs_dir, "Directory of task configs")
        ->capture_default_str();
    regress->callback([this, rg, &out] { action = [rg, &out] { return run_regress(*rg, out); }; });

    auto bo = std::make_shared<BenchOptions>();
    bo->bench_dir = std::filesystem::path(MLAB_BINARY_DIR) / "bench";
    auto* bench = app.add_subcommand(
        "bench",
        "Kernel and tokenizer speed beside their peers (the Google Benchmark executables)");
    bench->add_option("--filter", bo->filter, "Regex over benchmark names");
    bench->add_option("--format", bo->format, "console | json | csv")->capture_default_str();
    bench->add_option("--out", bo->out, "Also write each executable's JSON report here");
    bench->add_flag("--list", bo->list, "List the benchmarks instead of running them");
    bench->add_option("--bench-dir", bo->bench_dir, "Where the mlab_bench_* executables are")
        ->capture_default_str();
    bench->callback([this, bo, &out] { action = [bo, &out] { return run_bench(*bo, out); }; });

    auto tokenize_options = std::make_shared<TokenizeOptions>();
    auto* tokenize = app.add_subcommand("tokenize", "Encode or decode text with a tokenizer.json");
    tokenize->add_option("--tokenizer", tokenize_options->tokenizer, "tokenizer.json or model dir")
        ->required();
    tokenize->add_option("--text", tokenize_options->text,
                         "Text to encode (with --decode: a JSON array of ids)");
    tokenize->add_option("--input", tokenize_options->input,
                         "JSONL: a string or {\"text\": ...} per line (--decode: ids per line)");
    tokenize->add_flag("--decode", tokenize_options->decode, "Decode ids instead");
    tokenize->add_flag("--no-special", tokenize_options->no_special,
                       "Encode without the special tokens of the post-processor (BOS)");
    tokenize->add_flag("--skip-special", tokenize_options->skip_special,
                       "Decode without special tokens");
    tokenize->callback([this, &out, tokenize_options] {
      action = [&out, tokenize_options] { return run_tokenize(*tokenize_options, out); };
    });

    auto gen = std::make_shared<GenerateOptions>();
    auto* generate =
        app.add_subcommand("generate", "Answer a prompt about images with a VLM (greedy)");
    generate->add_option("--model", gen->model, "Model directory (config.json, *.safetensors, ...)")
        ->required();
    generate->add_option("--image", gen->images, "Image file (repeat for several)");
    generate->add_option("--prompt", gen->prompt, "The question (not with --inputs)");
    generate->add_option("--inputs", gen->inputs,
                         "Replay model inputs (input_ids, attention_mask, pixel_values, "
                         "image_sizes | image_grid_thw) from a .safetensors file");
    generate->add_option("--system", gen->system, "A system turn before the question");
    generate->add_option("--max-new-tokens", gen->max_new_tokens, "Tokens to generate at most")
        ->capture_default_str();
    generate->add_option("--stop", gen->stop, "Stop string (repeatable); the answer is cut there");
    generate->add_flag("--no-eos", gen->no_eos, "Do not stop at an end-of-sequence token");
    generate->add_option("--device", gen->device, "cpu | cuda | cuda:N")->capture_default_str();
    generate
        ->add_option("--dtype", gen->dtype,
                     "auto | float32 | bfloat16 | float16 (auto: float32 on CPU, else the "
                     "checkpoint's dtype)")
        ->capture_default_str();
    generate->add_option("--attention", gen->attention, "sdpa | eager")->capture_default_str();
    generate
        ->add_option("--processor", gen->processor,
                     "Image processor to reproduce: transformers-5 (PIL backend) | "
                     "transformers-4.51 (the slow processor of the paper's numbers)")
        ->capture_default_str();
    generate->add_option("--pillow", gen->pillow,
                         "Reproduce the resize of Pillow 13 | 12.2 | 12.1 | 10.4 (pass order; "
                         "default: 13, or 10.4 with --processor transformers-4.51)");
    generate->add_option("--alpha", gen->alpha,
                         "RGBA images: white (composite, transformers >= 5.2x) | drop (default: "
                         "white, or drop with --processor transformers-4.51)");
    generate->add_option("--threads", gen->threads, "Intra-op threads (0: LibTorch default)");
    add_max_image_pixels(generate);
    generate->add_option("--dump", gen->dump,
                         "Also write pixel values, input ids, positions, image features, prefill "
                         "logits (f32) and generated ids to this .safetensors file");
    generate->add_option("--dump-inputs", gen->dump_inputs,
                         "Write only the model inputs to this .safetensors file (for --inputs)");
    generate
        ->add_option("--mla-decode", gen->mla_decode,
                     "MHA2MLA models: decode by absorbed latent attention or K/V reconstruction")
        ->check(CLI::IsMember({"absorbed", "reconstruct"}))
        ->capture_default_str();
    generate->add_option(
        "--methods", gen->methods,
        "One KV-cache method stack, e.g. quanto:bits=4 or mha2mla+h2o:budget=0.375 "
        "(mla-bench list methods); default: full");
    generate->add_option("--warmup", gen->warmup, "Untimed generate runs before the measured one")
        ->capture_default_str();
    generate->add_flag("--json", gen->json,
                       "Print one JSON line (text, tokens, timings, the resolved method stack, KV "
                       "bytes, peak device memory)");
    generate->callback(
        [this, gen, &out] { action = [gen, &out] { return run_generate(*gen, out); }; });

    auto score_options = std::make_shared<ScoreOptions>();
    auto* score = app.add_subcommand("score", "Score predictions as lmms-eval does");
    score->add_option("--task", score_options->task, "Task name (see: mla-bench list tasks)")
        ->required();
    score->add_option("--predictions", score_options->predictions,
                      "Per-sample log JSONL (ours or lmms-eval's samples_<task>.jsonl)");
    score->add_option("--input", score_options->input, "Raw {prediction, doc} JSONL");
    score->add_flag("--aggregate", score_options->aggregate, "With --input: also print aggregates");
    score
        ->add_option("--mmbench-fallback", score_options->mmbench_fallback,
                     "MMBench rows no rule matches: random-2680 (lmms-eval) | wrong")
        ->capture_default_str();
    score_options->configs_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "tasks";
    score->add_option("--output-dir", score_options->output_dir,
                      "Also write lmms-eval's results.json and samples_<task>.jsonl here");
    score
        ->add_option("--family", score_options->family,
                     "With --output-dir: prompts of llava | llava_next | qwen2_5_vl")
        ->capture_default_str();
    score->add_option("--model-args", score_options->model_args,
                      "With --output-dir: recorded as lmms-eval's model_args");
    score->add_option("--configs", score_options->configs_dir, "Directory of task configs")
        ->capture_default_str();
    score->callback([this, score_options, &out] {
      action = [score_options, &out] { return run_score(*score_options, out); };
    });

    auto check_options = std::make_shared<CheckDatasetOptions>();
    auto* check = app.add_subcommand(
        "check-dataset",
        "Read and validate every sample of a dataset dir; print read/ok/failed and each failure");
    check->footer(
        "Without --skip-bad the first bad sample aborts (exit 1) naming file:line and the "
        "problem. With --skip-bad every bad sample is listed as a failed sample (never dropped) "
        "and the exit code is 0 when the dataset could be read to the end; dir-level problems "
        "(dataset.json, a sample count that differs from it) still exit 1.");
    check->add_option("--task", check_options->task, "Task name (see: mla-bench list tasks)")
        ->required();
    check
        ->add_option("--dataset", check_options->dataset,
                     "Dataset dir (dataset.json, samples.jsonl, images/)")
        ->required();
    add_max_image_pixels(check);
    check->add_flag("--skip-bad", check_options->skip_bad,
                    "Record bad samples as failed samples and go on (exit 0 if read to the end)");
    check->add_flag("--decode-images", check_options->decode_images,
                    "Decode every image (finds truncated files; default: header only)");
    check->add_flag("--json", check_options->json, "One JSON summary line");
    check->callback([this, check_options, &out] {
      action = [check_options, &out] { return run_check_dataset(*check_options, out); };
    });

    auto prompt_options = std::make_shared<PromptOptions>();
    prompt_options->configs_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "tasks";
    auto* prompt = app.add_subcommand(
        "prompt", "Print each doc's prompt text (lmms-eval's doc_to_text), one JSON string a line");
    prompt->add_option("--task", prompt_options->task, "Task name (see: mla-bench list tasks)")
        ->required();
    prompt
        ->add_option("--input", prompt_options->input,
                     "Docs JSONL (lmms-eval records, or samples.jsonl of a dataset dir)")
        ->required();
    prompt->add_option("--family", prompt_options->family, "llava | llava_next | qwen2_5_vl")
        ->capture_default_str();
    prompt->add_option("--configs", prompt_options->configs_dir, "Directory of task configs")
        ->capture_default_str();
    prompt->callback([this, prompt_options, &out] {
      action = [prompt_options, &out] { return run_prompt(*prompt_options, out); };
    });

    auto memory_options = std::make_shared<MemoryOptions>();
    auto* memory = app.add_subcommand(
        "memory", "Analytic KV-cache bytes of a method on a model (paper Tables 1-2)");
    memory->footer(
        "Method specs: full | mha2mla:d_kv=N[,rope_dim=32] | quanto:bits=4|2[,group=64,"
        "residual=128,quantize_rope=0] | hqq:bits=... (as quanto) | h2o:budget=F | tova:budget=F, "
        "stacked with '+', e.g. mha2mla:d_kv=128+quanto:bits=4. Nominal bytes are the paper's "
        "(elements x bits / 8); real bytes add the quantizer's bf16 scale and zero-point per group "
        "and the full-precision residual window.");
    memory->add_option("--config", memory_options->config, "config.json, or a model dir")
        ->required();
    memory
        ->add_option("--method", memory_options->method,
                     "Method spec, e.g. mha2mla:d_kv=64+quanto:bits=4")
        ->required();
    memory->add_option("--tokens", memory_options->tokens, "Tokens of the sequence (N)")
        ->capture_default_str();
    memory->add_flag("--json", memory_options->json, "One JSON object");
    memory->callback([this, memory_options, &out] {
      action = [memory_options, &out] { return run_memory(*memory_options, out); };
    });

    auto synth_options = std::make_shared<SynthCommandOptions>();
    synth_options->configs_dir = std::filesystem::path(MLAB_SOURCE_DIR) / "configs" / "tasks";
    auto* synth_cmd = app.add_subcommand(
        "synth", "Write the synthetic eight-task suite (dataset dirs + LLaVA training data)");
    synth_cmd->footer(
        "Deterministic: the same arguments give the same bytes. Layout, tasks and chance levels: "
        "docs/synth.md.");
    synth_cmd->add_option("--out", synth_options->out, "Suite dir (<task>/, train/, synth.json)")
        ->required();
    synth_cmd->add_option("--seed", synth_options->seed, "Seed of every stream")
        ->check(CLI::Validator(
            [](std::string& v) {
              return v.empty() || v[0] != '-' ? std::string() : "must be >= 0, got " + v;
            },
            "S>=0"))
        ->capture_default_str();
    synth_cmd
        ->add_option("--n", synth_options->n,
                     "Eval samples per task (POPE: per category; MMBench: questions x 4 copies)")
        ->capture_default_str();
    synth_cmd->add_option("--train-n", synth_options->train_n, "Training records per task")
        ->capture_default_str();
    synth_cmd->add_option("--image-size", synth_options->image_size, "Image side, pixels")
        ->capture_default_str();
    synth_cmd->add_option("--tasks", synth_options->tasks,
                          "Comma-separated tasks (default: all eight)");
    synth_cmd->add_option("--configs", synth_options->configs_dir, "Directory of task configs")
        ->capture_default_str();
    synth_cmd->add_flag("--quiet", synth_options->quiet, "No progress on stderr");
    synth_cmd->callback([this, synth_options, &out] {
      action = [synth_options, &out] { return run_synth(*synth_options, out); };
    });

    for (auto& p : planned) {
      p.app->callback([this, &p] {
        action = [&p]() -> int {
          throw UsageError("mla-bench " + p.app->get_name() + ": not implemented yet (issue " +
                           p.issue + ")");
        };
      });
    }
  }
};

bool is_subcommand(const CLI::App& app, const std::string& word) {
  for (const auto* sub : app.get_subcommands({})) {
    if (sub->get_name() == word) return true;
  }
  return false;
}

std::string subcommand_hint(const CLI::App& app, const std::string& word) {
  std::vector<std::string> names;
  for (const auto* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  return unknown_name_message("subcommand", word, names);
}

}  // namespace

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Cli cli(out);
  // An unknown first word is most likely a mistyped subcommand: say which one was meant.
  if (argc > 1 && argv[1][0] != '-' && !is_subcommand(cli.app, argv[1])) {
    err << "mla-bench: " << subcommand_hint(cli.app, argv[1]) << "\n";
    return kExitUsage;
  }
  try {
    cli.app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return cli.app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return cli.app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    cli.app.exit(e, out, err);
    return kExitUsage;
  }
  try {
    return cli.action ? cli.action() : kExitUsage;
  } catch (const UsageError& e) {
    err << e.what() << "\n";
    return kExitUsage;
  } catch (const Error& e) {
    err << "mla-bench: error: " << e.what() << "\n";
    return kExitFailure;
  } catch (const c10::Error& e) {
    err << "mla-bench: error: " << (cli.verbose ? e.what() : e.what_without_backtrace()) << "\n";
    return kExitFailure;
  } catch (const std::exception& e) {
    err << "mla-bench: error: " << e.what() << "\n";
    return kExitFailure;
  }
}

}  // namespace mlab::harness
