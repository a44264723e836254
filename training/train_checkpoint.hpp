#pragma once
// Checkpoints of `mla-bench train` (issue F8): <out>/checkpoint-<step>/ is a Hugging Face model
// dir (the source dir's config, tokenizer and processor files copied; model.safetensors with the
// tensor names, shapes and dtypes of the source's weights, the trained tensors replaced) that
// Vlm::load, eval and the next stage read, plus trainer_state.safetensors (AdamW's exp_avg /
// exp_avg_sq per trainable parameter) and trainer_state.json (step, AdamW step counts, the data
// stream position, the run's options). Written into a temp dir and renamed, so a kill leaves the
// previous checkpoints whole and no half-written one under a checkpoint name.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "models/runtime/vlm.hpp"
#include "training/trainer.hpp"

namespace mlab::training {

// Writes <out>/checkpoint-<trainer.steps_done()> (replacing one of that name). `source` is the
// dir `model` was loaded from; `state` is stored in trainer_state.json beside "step" and
// "adamw_steps". Returns the checkpoint dir.
std::filesystem::path save_train_checkpoint(const std::filesystem::path& out,
                                            const std::filesystem::path& source,
                                            const Trainer& trainer, nlohmann::json state);

// The checkpoint of `out` with the largest step that has a trainer_state.json; nullopt if none.
std::optional<std::filesystem::path> latest_train_checkpoint(const std::filesystem::path& out);

// Reads trainer_state.{json,safetensors} of `dir` into `trainer` (optimizer moments, step
// counts, steps done) and returns the JSON. Throws mlab::Error naming the dir when the state
// does not fit the trainer's parameters.
nlohmann::json load_train_state(const std::filesystem::path& dir, Trainer& trainer);

// Removes `dir` and everything below it (no-op when absent); throws mlab::Error naming the dir
// when it cannot. Use it, not std::filesystem::remove_all, wherever the binary removes a tree:
// that symbol binds to libtorch.so's copy, which crashes on a non-empty directory
// (train_checkpoint.cpp).
void remove_tree(const std::filesystem::path& dir);

}  // namespace mlab::training
