#pragma once
// Calibration data of `mla-bench convert` (MHA2MLA-VLM §2.4-2.5: MKL scores and the MD-SVD
// covariances S = sum X X^T are taken over calibration samples). The authors' recipe
// (run_svd_init.py): after setup_seed(42), a DataLoader with shuffle=True and batch 1 over their
// dataset, each sample encoded by swift's TRAINING template (user turn with its images, the
// assistant's answer, the closing suffix; models/prompt/train_template.hpp), the first
// total_num = 512 samples. We take the samples of a dataset dir (docs/formats.md) in the order of
// torch.randperm(n, generator=torch.Generator().manual_seed(seed)), the first `samples` of them.
// NOTE(F14): the authors' DataLoader (RandomSampler without a generator) seeds its permutation
// from the global RNG AFTER their model construction has drawn from it, so the exact order and,
// for a dataset larger than 512, the exact sample set are not reproducible outside their
// process; the recipe (train template with answers, a seed-42 permutation, 512 samples) is.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "models/runtime/vlm.hpp"

namespace mlab::harness {

// How calibration samples become model inputs: kTrain (swift's training template with the
// dataset's answer, the authors' recipe) or kEval (the evaluation prompt, no answer).
enum class CalibFormat { kTrain, kEval };

// "train" | "eval"; throws mlab::Error naming the known formats (and the closest).
CalibFormat parse_calib_format(std::string_view name);
std::string_view calib_format_name(CalibFormat format);

// torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist() (ATen's CPU generator
// and randperm, the kernel PyTorch runs). Throws mlab::Error for n < 0.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

struct CalibrationOptions {
  CalibFormat format = CalibFormat::kTrain;
  int64_t samples = 512;  // the first N of the permutation (<= 0: all)
  uint64_t seed = 42;     // of the permutation
};

struct CalibrationData {
  std::vector<models::VlmRequest> requests;  // in permutation order
  std::vector<std::string> ids;              // the dataset ids of `requests`
  std::vector<std::string> skipped;          // kTrain: ids of samples without an answer
  std::vector<std::string> skip_reasons;     // read_calibration_train_data: why, per `skipped`
  int64_t dataset_samples = 0;               // samples in the dataset dir (records in the file)
};

// The calibration requests of the dataset dir `dir` (its task from dataset.json): each sample's
// question after its images in one user turn; with kTrain also the assistant turn holding the
// sample's first gold answer as the dataset gives it (Sample::answers: e.g. the option letter of
// a multiple-choice task), with VlmRequest::mode = kTrain. Under kTrain, samples without an
// answer (none, or an empty one) are left out before the permutation and listed in `skipped`.
// Only the chosen samples' images are decoded. Throws mlab::Error naming the dir for a missing
// or malformed dataset.json, bad samples (DatasetReader's errors), or when no sample has an
// answer under kTrain.
CalibrationData read_calibration(const std::filesystem::path& dir,
                                 const CalibrationOptions& options);

// The calibration requests of a fine-tuning data file, the one `mla-bench train` reads (LLaVA or
// swift JSON / JSONL, training/train_data.hpp: read_train_data; images relative to `image_root`,
// "" = the file's dir): the MHA2MLA pipeline calibrates MD-SVD on its training data, as the
// authors' run_svd_init.py encodes its samples with swift's training template. Each usable record
// becomes one kTrain request with all its turns (system, user and assistant) and images, exactly
// as make_train_batch renders it; records read_train_data refuses are left out before the
// permutation and listed in `skipped` / `skip_reasons`. The same choice as read_calibration: the
// first `options.samples` of seeded_permutation(usable records, options.seed). Only kTrain is
// accepted (the records are conversations, not questions). Throws mlab::Error naming the file
// for unreadable JSON, an undecodable chosen image, or no usable record.
CalibrationData read_calibration_train_data(const std::filesystem::path& file,
                                            const CalibrationOptions& options,
                                            const std::filesystem::path& image_root = {});

}  // namespace mlab::harness
