#pragma once
// The implemented subcommands of mla-bench, one function each; harness/cli.cpp parses the
// command line into these option structs and dispatches. Each returns the process exit code
// (0 ok, 1 failure) and throws mlab::Error / mlab::UsageError / c10::Error on failure.
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace mlab::harness {

struct ListOptions {
  std::string what;  // models | methods | tasks | metrics
};
// Prints the registry named by options.what (names, one-line docs, planned status).
int run_list(const ListOptions& options, std::ostream& out);

struct InspectOptions {
  std::filesystem::path path;  // a model dir, a .safetensors file or a config.json
  bool json = false;           // machine-readable output
  bool check = false;          // also read every tensor (detects truncated data)
};
// Prints the model config summary and the tensor table of a Hugging Face model directory.
int run_inspect(const InspectOptions& options, std::ostream& out);

struct SelftestOptions {
  std::filesystem::path configs_dir;  // configs/models of the source tree
  std::filesystem::path work_dir;     // scratch output (a checkpoint round trip is written here)
  std::string device = "cpu";         // cpu | cuda
  int threads = 0;                    // 0 = LibTorch's default
  int64_t seed = 0;
};
// `mla-bench selftest`: the paper's model configs parse, a sharded checkpoint round-trips
// bit-exactly, the RMSNorm kernel matches its reference on the device, the tiny fixture VLMs
// answer. Throws mlab::Error on the first failed check.
int run_selftest(const SelftestOptions& options, std::ostream& out);

struct QuickstartOptions {
  std::filesystem::path model;     // the MHA model to convert (assets/models/mlab-llava-synth)
  std::filesystem::path work_dir;  // synth/, models/, results.sqlite, site/ (phases cached there)
  std::string device = "cpu";      // cpu | cuda
  int threads = 0;                 // 0 = LibTorch's default
  int64_t seed = 0;                // the suite's seed (and every other seed derives from it)
  int64_t samples = 40;            // eval samples per task
  int64_t train_samples = 64;      // fine-tuning records per task (both stages)
  std::vector<int64_t> d_kv = {16, 32};  // latent dims per KV head, one MLA model each
  int64_t rope_dims = 16;          // r, RoPE dims kept per head (MKL)
  int64_t steps = 20;              // optimizer steps per fine-tuning stage
  int64_t batch = 8;               // rows per step
  double lr = 1e-3;                // peak LR of both stages (WSD)
  int64_t quant_residual = 16;     // Quanto / HQQ full-precision residual window (tokens)
  int64_t eval_batch = 8;          // eval rows per batch
  std::string prompt_format = "chat";  // fine-tuning records: chat (the demo models' format) | swift
  std::filesystem::path db;        // "": <work_dir>/results.sqlite
  std::string run_prefix = "quickstart";  // runs are <run_prefix>/<configuration>
  std::string series_prefix;       // dashboard series <series_prefix>/<configuration> ("": run_prefix)
};
// `mla-bench quickstart`: the paper's Table 2 in miniature on the synthetic suite (issue F9):
// synth -> MHA2MLA at each d_kv -> every compared method evaluated into <work_dir>/results.sqlite
// -> the table -> the dashboard, with each phase's time.
int run_quickstart(const QuickstartOptions& options, std::ostream& out);

struct ScoreOptions {
  std::string task;                              // lmms-eval task name (aliases accepted)
  std::filesystem::path input;                   // raw {"prediction", "doc"} JSONL, or
  std::filesystem::path predictions;             // a per-sample log (ours or lmms-eval's)
  bool aggregate = false;                        // --input: also print the aggregates
  std::string mmbench_fallback = "random-2680";  // random-2680 | wrong
  // Set: also write lmms-eval's layouts, <output_dir>/results.json and samples_<task>.jsonl
  // (evaluators/lmms_output.hpp), with the prompts of `family` from configs_dir.
  std::filesystem::path output_dir;
  std::string family = "llava";       // llava | llava_next | qwen2_5_vl
  std::filesystem::path configs_dir;  // configs/tasks
  std::string model_args;             // recorded as lmms-eval's config.model_args
};
// `mla-bench score`: with `input`, one JSON object per line holding lmms-eval's per-sample metric
// values ({"exact_match": 1.0}, ...), then (with `aggregate`) one results line; with
// `predictions`, one results line {"task", "samples", "results": {"<metric>,<filter>": value,
// "<metric>_stderr,<filter>": ...}, "log_comparison"?}. With `output_dir`, also writes the
// lmms-eval results JSON and per-sample log there (re-readable by --predictions). Malformed
// lines throw "file:line: reason".
int run_score(const ScoreOptions& options, std::ostream& out);

struct CheckDatasetOptions {
  std::string task;               // lmms-eval task name (aliases accepted)
  std::filesystem::path dataset;  // the dataset dir (dataset.json, samples.jsonl, images/)
  bool skip_bad = false;          // bad samples become failed samples instead of aborting
  bool decode_images = false;     // decode every image (else only its header is read)
  bool json = false;              // one JSON summary line instead of text
};
// `mla-bench check-dataset`: reads every sample of the dir through datasets::DatasetReader with
// a progress reporter on stderr and prints the summary (samples read, ok, failed, and each
// failure with file:line, sample id and reason). Without skip_bad the first bad sample throws
// mlab::Error "samples.jsonl:N: reason"; with it, returns 0 when the dir was read to the end
// (dir-level problems, e.g. a wrong sample count in dataset.json, still throw).
int run_check_dataset(const CheckDatasetOptions& options, std::ostream& out);

struct PromptOptions {
  std::string task;                   // lmms-eval task name (aliases accepted)
  std::filesystem::path input;        // docs JSONL: lmms-eval records, or dataset-dir sample lines
  std::string family = "llava";       // llava | llava_next | qwen2_5_vl
  std::filesystem::path configs_dir;  // configs/tasks
};
// `mla-bench prompt`: each doc's rendered prompt text (lmms-eval's doc_to_text with the family's
// model kwargs), one JSON string per line.
int run_prompt(const PromptOptions& options, std::ostream& out);

struct TokenizeOptions {
  std::filesystem::path tokenizer;  // a tokenizer.json, or a model directory holding one
  std::string text;                 // one input inline (with decode: a JSON array of ids)
  std::filesystem::path input;      // JSONL: a string or {"text": s} per line (with decode: an
                                    // id array or {"ids": [...]} per line)
  bool decode = false;              // ids -> text instead of text -> ids
  bool no_special = false;          // encode without the post-processor's special tokens (BOS)
  bool skip_special = false;        // decode without special tokens
};
// `mla-bench tokenize`: exactly one of text / input. Encoding prints one JSON id array per
// input; decoding prints the text (for text) or one JSON string per line (for input). Throws
// UsageError for bad option combinations, mlab::Error ("file:line: reason") for bad input.
int run_tokenize(const TokenizeOptions& options, std::ostream& out);

struct GenerateOptions {
  std::filesystem::path model;                // Hugging Face model dir
  std::vector<std::filesystem::path> images;  // in placeholder order (before the prompt text)
  std::string prompt;                         // the user's question
  std::string system;                         // optional system turn
  int64_t max_new_tokens = 64;
  std::vector<std::string> stop;  // stop strings (the answer is cut there)
  bool no_eos = false;            // do not stop at EOS
  std::string device = "cpu";
  std::string dtype = "auto";      // auto (CPU: float32; else the files' dtype) | ...
  std::string attention = "sdpa";  // sdpa | eager
  // transformers release whose image processor to reproduce: transformers-5 | transformers-4.51
  std::string processor = "transformers-5";
  std::string pillow;  // Pillow version whose resize pass order to follow; "": the processor's
                       // (13 for transformers-5, 10.4 for transformers-4.51)
  std::string alpha;   // RGBA images: white (composite) | drop; "": the processor's (white | drop)
  int threads = 0;
  std::filesystem::path inputs;         // replay model inputs from .safetensors instead
  std::filesystem::path dump;           // write inputs, features, logits (.safetensors)
  std::filesystem::path dump_inputs;    // write only the model inputs (.safetensors)
  int warmup = 0;                       // untimed generate runs before the measured one
  std::string mla_decode = "absorbed";  // converted (MLA) models: absorbed | reconstruct
  std::string methods;                  // one KV method stack (eval's grammar); empty = full
  bool json = false;                    // one JSON line with text, tokens and timings
};
// `mla-bench generate`: greedy answer of a VLM to one prompt; prints it (or JSON: text, tokens,
// timings, the resolved method stack, KV bytes, the device's peak memory). Throws UsageError for
// a malformed --methods stack or one the model cannot run.
int run_generate(const GenerateOptions& options, std::ostream& out);

struct MemoryOptions {
  std::filesystem::path config;  // a config.json, or a model dir holding one
  std::string method;            // method stack, e.g. mha2mla:d_kv=64+quanto:bits=4
  int64_t tokens = 1024;         // cached tokens N (> 0)
  bool json = false;             // one JSON object instead of text
};
// `mla-bench memory`: the analytic KV-cache memory of a method stack on a model
// (methods/kv_memory.hpp): per token per layer and in total (all layers, N tokens), for the
// original cache, the MHA-equivalent cache and the method (nominal and real bytes), and the
// changes vs the original cache (Table 2 convention) and vs the MHA-equivalent cache (Table 1).
// Throws UsageError for a malformed method spec or tokens <= 0, mlab::Error for an unreadable
// config or options that do not fit the model.
int run_memory(const MemoryOptions& options, std::ostream& out);

struct ConvertOptions {
  std::filesystem::path model;  // source model dir (GQA/MHA)
  std::filesystem::path out;    // converted model dir
  std::string rope = "2norm";   // high | low | uniform | 2norm | mkl
  int64_t rope_dims = 32;       // r
  std::filesystem::path ranks;  // rank file instead of scoring
  int stage = 2;                // 1 partial RoPE | 2 MLA
  int64_t d_kv = 64;
  std::string svd = "md";       // md | activation | weight ("joint": old name of activation)
  std::string format = "authors";  // config.json dialect: authors | mlab
  std::filesystem::path calib;  // dataset dir of calibration samples
  // Or a fine-tuning data file (LLaVA / swift JSON or JSONL, as `train --data`): each record in
  // the training template (harness/calibration_data.hpp read_calibration_train_data).
  std::filesystem::path calib_data;
  std::filesystem::path calib_image_root;  // calib_data's images ("": the file's dir)
  std::string calib_format = "train";  // train (swift's training template + answer) | eval
  int64_t calib_samples = 512;  // the first N of the seeded permutation (0 = all)
  uint64_t calib_seed = 42;     // seed of the permutation (torch.randperm)
  int64_t mkl_queries = 64;
  int64_t mkl_samples = 32;  // MKL scores on the first N calibration samples (0 = all)
  std::string device = "cpu";
  std::string dtype = "float32";  // conversion precision (SVD itself runs in f64)
  int threads = 0;
  std::filesystem::path report;  // JSON with losses, scores, timings
};
// `mla-bench convert`: exit 0, or 1 if a layer violated Theorem 2.1 (split loss > joint loss).
int run_convert(const ConvertOptions& options, std::ostream& out);

struct TrainOptions {
  std::filesystem::path model;         // model dir (the trainer's input; --dry-run: its config)
  std::filesystem::path model_config;  // --dry-run: a config.json or a dir holding one
  int stage = -1;                      // 0 (all parameters, unconverted model) | 1 | 2; -1: unset
                                       // (--dry-run: stages 1 and 2)
  std::string peft;                    // none | v2..v6; "": the authors' (stage 1 v4, stage 2 v2)
  int64_t rope_dims = 32;              // r
  int64_t d_kv = 64;                   // stage 2 latent per KV head
  bool freeze_aligner = false;         // swift's freeze_aligner (the authors: false)
  bool train_vision = false;           // swift's freeze_vit = false (the authors: frozen)
  bool freeze_vision = false;          // stage 0: keep the vision tower frozen (default: trained)
  bool dry_run = false;                // print the trainable parameter sets only
  bool json = false;                   // --dry-run: one JSON object
  bool list_parameters = false;        // --dry-run: also every tensor (name, shape, trainable)
  std::filesystem::path paper_params;  // configs/paper/trainable_params.json ("" or absent: none)
  // The trainer (without --dry-run; docs/training.md).
  std::filesystem::path data, out;
  std::filesystem::path image_root;  // "" : the data file's directory
  std::filesystem::path eval_data;   // held-out records: their loss is printed at the end
  int64_t steps = 0;                 // optimizer steps (or --epochs)
  double epochs = 0;
  int64_t batch = 1, accum = 1;      // micro-batch size (rows), gradient accumulation
  double lr = 1e-4;                  // peak LR of the schedule
  // The schedule (training/lr_schedule.hpp): "wsd" (the authors' WSD: linear warmup, constant,
  // 1-sqrt decay over the last decay_ratio of the steps) or "cosine" (transformers' cosine with
  // linear warmup). Ratios of the total steps; the LR ends at min_lr_ratio * lr.
  std::string lr_schedule = "wsd";
  // How records become ids (training/train_data.hpp TrainDataOptions::prompt): "swift" (the
  // authors' training template) | "chat" (the evaluation prompt + answer + EOS).
  std::string prompt_format = "swift";
  double warmup_ratio = 0.1;
  double decay_ratio = 0.1;   // wsd only
  double min_lr_ratio = 0.0;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;
  uint64_t seed = 42;                // the sample order
  int64_t save_every = 0;            // checkpoint every N steps (0: at the end only)
  int64_t stop_after = 0;            // > 0: stop after this step (schedule still over all steps)
  int64_t max_length = 0;            // > 0: skip records with more tokens
  bool resume = false;               // continue from the latest checkpoint in --out
  bool strict = false;               // a bad record is fatal
  std::string device = "cpu";
  std::string dtype = "auto";
  bool activation_checkpointing = false;  // recompute each decoder layer in the backward
  // The results store (docs/training.md): a training run and one row per optimizer step.
  std::filesystem::path db;  // "": none (train_log.jsonl only)
  std::string run_name;      // "": "train:<absolute --out dir>"
};
// `mla-bench train`: with dry_run, each stage's parameters by group (tensors, elements, share of
// the model, trainable or not) and the trainable total beside the paper's Tables 5-6
// (training/trainable.hpp). Without dry_run: UsageError (the trainer lands later in F8). Throws
// UsageError for a bad --peft or a missing config option, mlab::Error for an unreadable config
// or options that do not fit the model (rope dims, d_kv).
int run_train(const TrainOptions& options, std::ostream& out);
// `mla-bench train` without --dry-run (harness/train_run.cpp): fine-tunes --model (a stage-1 or
// stage-2 dir matching --stage) on --data, checkpoints and train_log.jsonl in --out. Throws
// UsageError for bad options, mlab::Error for a model of another stage, bad data under --strict,
// a non-finite loss (naming the step and the last checkpoint).
int run_training(const TrainOptions& options, std::ostream& out);

struct Mha2mlaOptions {
  std::filesystem::path model;       // the source model dir (MHA / GQA)
  std::filesystem::path data;        // fine-tuning data (as train --data); also calibrates MD-SVD
  std::filesystem::path out;         // stage1_init/ stage1/ stage2_init/ stage2/ pipeline.json
  std::filesystem::path eval_data;   // held-out records (same format); "": no held-out loss
  std::filesystem::path image_root;  // "": each data file's dir
  std::string rope = "mkl";          // stage-1 keep-sets: high | low | uniform | 2norm | mkl
  std::filesystem::path ranks;       // a rank file instead of scoring (their qk_tensor_path)
  int64_t rope_dims = 32;            // r (their rope_dim_for_mla)
  int64_t d_kv = 0;                  // 0: the authors' low_rank for the family (64 / 128 / 128)
  int64_t stage1_steps = 0, stage2_steps = 0;  // optimizer steps, or
  double stage1_epochs = 0, stage2_epochs = 0;  // epochs (neither given: 1 epoch)
  double lr1 = 0, lr2 = 0;           // 0: the authors' for the family (stage 2: and d_kv)
  int64_t batch = 1, accum = 16;     // global batch 16 (their stage-2 1 x 16; stage 1 2 x 8)
  int64_t max_length = 4096;         // their max_length: longer records are skipped
  int64_t calib_samples = 512;       // their total_num
  uint64_t calib_seed = 42;          // their run_svd_init seed
  int64_t mkl_samples = 32;          // MKL scoring samples (convert --mkl-samples)
  uint64_t seed = 42;                // stage-1 sample order
  uint64_t stage2_seed = 2025;       // stage-2 sample order (their stage2.yaml data_seed)
  // Fine-tuning records: swift (the authors' training template) | chat (the evaluation prompt +
  // answer + EOS): TrainOptions's. MD-SVD calibrates on swift's template of the records either way.
  std::string prompt_format = "swift";
  int64_t save_every = 0;            // training checkpoints every N steps (0: at the end only)
  std::string stop_after_step;       // stop after this step (stage1_init | stage1 | stage2_init)
  bool resume = false;               // skip finished steps, resume an unfinished training step
  std::string device = "cpu";
  std::string dtype = "auto";        // training and held-out loss (conversion: float32)
  int threads = 0;
};
// `mla-bench mha2mla` (harness/mha2mla_command.cpp): the paper's pipeline, partial RoPE (convert
// --stage 1) -> stage-1 training -> MD-SVD on the stage-1 model calibrated on --data (convert
// --stage 2) -> stage-2 training, each step's output a dir under `out`, recorded in
// out/pipeline.json with timings and, with eval_data, the held-out loss of its model. Throws
// UsageError for bad options, mlab::Error for a used --out without resume and every error of
// convert and train.
int run_mha2mla(const Mha2mlaOptions& options, std::ostream& out);

struct EvalOptions {
  std::filesystem::path model;
  std::string tasks;               // comma-separated lmms-eval task names
  std::filesystem::path datasets;  // <datasets>/<task>/ dataset dirs
  std::string methods;             // "" = the --paper-row's method_spec, else full
  std::filesystem::path db = "results.sqlite";
  std::string run_name;  // default: <model dir name>-<tasks>
  int64_t limit = 0;     // samples per task (0: all)
  int64_t batch_size = 1;
  std::string device = "cpu";
  std::string dtype = "auto";
  // transformers release whose image processor to reproduce (with its Pillow's resize), recorded
  // in the run config: transformers-5 | transformers-4.51 (the paper's numbers)
  std::string processor = "transformers-5";
  int threads = 0;
  int64_t seed = 0;
  std::filesystem::path configs_dir;  // configs/tasks
  bool skip_bad = false;
  // Every image replaced by a white one of its size (the ablation "does the model use the
  // image?": a model that reads its images falls to chance). Recorded in the run config.
  bool blank_images = false;
  // Data-parallel shards (DESIGN.md §1): rank r of n evaluates the samples whose position in the
  // dataset is r mod n and writes them to the one database. -1: from torchrun's RANK/WORLD_SIZE
  // environment (0 of 1 when unset).
  int rank = -1;
  int world_size = -1;
  // Recorded in the run's config: the paper table row the run fills ("table<N>/<row id>", read by
  // `report`), and the series the dashboard draws its trend in (default: model + methods + dtype).
  std::string paper_row;
  std::string series;
  double db_timeout_s = 30;  // how long a write waits for another process's lock
};
// `mla-bench eval`: generate, score and store every sample; resumes a run of the same name.
int run_eval(const EvalOptions& options, std::ostream& out);

struct RegressOptions {
  std::filesystem::path db = "results.sqlite";
  std::string baseline;  // run names
  std::string candidate;
  double tolerance = 0.0;             // allowed drop, in the metric's units (KV bytes: relative)
  std::filesystem::path configs_dir;  // configs/tasks (metric directions)
};
// `mla-bench regress`: exit 1 when a metric dropped (or KV bytes grew) beyond the tolerance.
int run_regress(const RegressOptions& options, std::ostream& out);

struct ReportOptions {
  std::filesystem::path db;          // "" or absent file: the paper's numbers, "no run" elsewhere
  std::string table = "1";           // 1 | 2 | 3 | 4 | all
  std::string format = "md";         // md | csv | html
  std::filesystem::path tables_dir;  // configs/paper (table<N>.json)
};
// `mla-bench report`: the paper's Tables 1-4 with every published number, beside the values of
// the runs mapped to its rows (config "paper_row": "table<N>/<row id>") and the difference.
int run_report(const ReportOptions& options, std::ostream& out);

struct DashboardOptions {
  std::filesystem::path db = "results.sqlite";
  std::filesystem::path out = "site";  // written: index.html, runs/<id>.json
  std::filesystem::path configs_dir;   // configs/tasks (metric directions)
  double tolerance = 0.0;              // a drop beyond it between consecutive runs is marked
  double speed_tolerance = 0.10;       // timings: a relative slowdown beyond it is marked
  std::string title = "MLA-Bench results";
};
// `mla-bench dashboard`: a static HTML page (inline SVG, no scripts or network needed) drawn
// from the database: score vs KV memory, per-benchmark bars, trends with regressions marked, the
// latest runs, and each run's resolved config.
int run_dashboard(const DashboardOptions& options, std::ostream& out);

struct BenchOptions {
  std::string filter;               // Google Benchmark's --benchmark_filter regex ("" = all)
  std::filesystem::path bench_dir;  // where the mlab_bench_* executables are
  std::string format = "console";   // console | json | csv (--benchmark_format)
  std::filesystem::path out;        // also write each executable's report to <out>/<name>.json
  bool list = false;                // only list the benchmarks
};
// `mla-bench bench`: runs every Google Benchmark executable of the build (bench/, each kernel
// beside its peers in the same run) with the filter, forwarding their output; exit 1 when one
// fails, 1 with a message when none is built (-DMLAB_BENCH=OFF).
int run_bench(const BenchOptions& options, std::ostream& out);

struct ExportOptions {
  std::filesystem::path db = "results.sqlite";
  std::string run;                    // run name
  std::filesystem::path out_dir;      // results.json + samples_<task>.jsonl
  std::filesystem::path configs_dir;  // configs/tasks (prompts, metric filters)
};
// `mla-bench export`: a stored run in lmms-eval's output layout (evaluators/lmms_output.hpp).
int run_export(const ExportOptions& options, std::ostream& out);

struct SynthCommandOptions {
  std::filesystem::path out;          // the suite dir
  std::uint64_t seed = 1;
  int64_t n = 50;                     // eval samples per task (POPE: per category)
  int64_t train_n = 0;                // training records per task
  int image_size = 112;
  std::string tasks;                  // comma-separated lmms-eval names ("": all eight)
  std::filesystem::path configs_dir;  // configs/tasks (training prompts)
  bool quiet = false;                 // no progress on stderr
};
// `mla-bench synth`: the synthetic eight-task suite (synth/synth_suite.hpp, docs/synth.md);
// prints the tasks with their sample counts and chance levels, and the generation speed.
// Throws UsageError for bad arguments (exit 2).
int run_synth(const SynthCommandOptions& options, std::ostream& out);

}  // namespace mlab::harness
