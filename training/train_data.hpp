#pragma once
// Fine-tuning data of `mla-bench train` (issue F8): LLaVA-format instruction JSON / JSONL
// ({"id", "image": path or list, "conversations": [{"from": "human" | "gpt", "value"}]}) or
// swift's ({"messages": [{"role", "content"}], "images": [...]}), rendered through swift's
// training template (models/prompt/train_template.hpp) by Vlm::prepare in kTrain mode, with the
// labels encode_train gives. The sample order is a pure function of (seed, position), so a resumed
// run reads the same samples as an uninterrupted one.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "models/prompt/chat_prompt.hpp"
#include "models/runtime/vlm.hpp"
#include "training/train_batch.hpp"

namespace mlab::training {

struct TrainRecord {
  std::string id;                           // the record's "id" (else "#<index>")
  std::vector<prompt::Turn> turns;          // system? / user / assistant ...
  std::vector<std::filesystem::path> images;  // resolved paths, in reading order
};

struct TrainDataOptions {
  std::filesystem::path image_root;  // "" : the data file's directory
  int64_t max_length = 0;            // > 0: records whose ids are longer are skipped
  std::string max_length_name = "--max-length";  // what the skip reason calls the limit
  // How a record becomes ids. "swift": ms-swift's training template of the family (what the
  // MHA2MLA-VLM authors fine-tune with; train_template.hpp). "chat": the evaluation prompt
  // (chat_prompt.hpp, lmms-eval's layout: the images of a user turn first, "<image>" tags
  // removed) of the conversation up to its last answer, then that answer's tokens and the first
  // EOS id of the model, only those carrying loss: for models trained from scratch (F9's synth
  // VLMs), whose only prompt format is the one eval uses (LLaVA: swift writes
  // "...\nASSISTANT:", lmms-eval "... ASSISTANT:").
  std::string prompt = "swift";
};

struct SkippedRecord {
  std::string id;
  std::string reason;
};

struct TrainData {
  std::vector<TrainRecord> records;    // the usable records, in file order
  std::vector<SkippedRecord> skipped;  // records refused while reading (cheap checks)
};

// Reads `path` (a JSON list or JSONL). Cheap checks only: a record without an assistant answer,
// with a role that is neither user nor assistant, or with a missing image file is listed in
// `skipped` with the reason. Throws mlab::Error naming the file for unreadable JSON.
TrainData read_train_data(const std::filesystem::path& path, const TrainDataOptions& options);

// Sample k of the stream: epoch k / n in the order of a Fisher-Yates shuffle of 0..n-1 by
// std::mt19937_64(seed + epoch) (the standard fixes its output), position k % n.
int64_t stream_index(int64_t k, int64_t n, uint64_t seed);

// One record as a micro-batch of one row (ids, mask, pixels from Vlm::prepare in kTrain mode, the
// labels of encode_train). Throws mlab::Error with the reason (undecodable image, longer than
// options.max_length, no supervised token, template errors).
TrainBatch make_train_batch(const models::Vlm& model, const TrainRecord& record,
                            const TrainDataOptions& options);

// The same for turns and decoded images given in memory (what make_train_batch calls after
// decoding the record's image files).
TrainBatch make_train_batch(const models::Vlm& model, const std::vector<prompt::Turn>& turns,
                            std::vector<image::Rgb8Image> images, const TrainDataOptions& options);

}  // namespace mlab::training
