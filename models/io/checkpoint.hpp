#pragma once
// Hugging Face checkpoints in safetensors: one file, a directory with model.safetensors, or a
// directory with model.safetensors.index.json and its shards (the layout transformers'
// save_pretrained writes). Reading validates that the index and the shards agree exactly.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/io/safetensors.hpp"

namespace mlab::models {

// An opened checkpoint: every shard mapped and validated, every tensor located. Move-only (it
// holds pointers into its own shards).
class Checkpoint {
 public:
  Checkpoint(Checkpoint&&) = default;
  Checkpoint& operator=(Checkpoint&&) = default;
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  // Opens `dir_or_file`: a .safetensors file; a *.safetensors.index.json file; or a directory
  // holding model.safetensors (preferred, as transformers does) or model.safetensors.index.json.
  // For an index: parses weight_map (tensor -> shard file) and the optional metadata.total_size,
  // opens each referenced shard once, and requires that every listed tensor is in its shard and
  // that every shard tensor is listed exactly once. Throws mlab::Error naming the checkpoint,
  // the index or the shard and the problem.
  static Checkpoint open(const std::filesystem::path& dir_or_file);

  // All tensor names, sorted.
  const std::vector<std::string>& names() const { return names_; }

  bool contains(std::string_view name) const { return locations_.count(name) != 0; }

  // Header entry of `name`; throws mlab::Error naming the checkpoint and the closest name.
  const TensorInfo& info(std::string_view name) const;

  // The file holding `name`; throws like info().
  const SafetensorsFile& file_of(std::string_view name) const;

  // `name` as a CPU tensor of its stored dtype and shape (zero-copy when aligned, see
  // load_tensor); throws like info().
  at::Tensor get(std::string_view name) const;

  // "__metadata__" of the first shard (by file name); empty when there is none.
  const std::map<std::string, std::string>& metadata() const;

  // The opened files, sorted by file name (one for an unsharded checkpoint).
  const std::vector<SafetensorsFile>& shards() const { return shards_; }

  // True when opened through an index.
  bool sharded() const { return sharded_; }

  // metadata.total_size of the index, when present.
  std::optional<uint64_t> index_total_size() const { return index_total_size_; }

  // The path given to open().
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Location {
    std::size_t shard = 0;
    const TensorInfo* info = nullptr;  // points into shards_[shard].tensors()
  };
  Checkpoint() = default;
  static Checkpoint open_single(const std::filesystem::path& given,
                                const std::filesystem::path& file);
  static Checkpoint open_index(const std::filesystem::path& given,
                               const std::filesystem::path& index);
  const Location& locate(std::string_view name) const;
  void index_tensors();

  std::filesystem::path path_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, Location, std::less<>> locations_;
  std::vector<std::string> names_;
  bool sharded_ = false;
  std::optional<uint64_t> index_total_size_;
};

// Saves `tensors` (any device; see save_safetensors) under directory `dir` (created if missing)
// the way transformers' save_pretrained does: model.safetensors when max_shard_bytes == 0 or the
// tensors' total size fits; otherwise model-0000i-of-0000N.safetensors shards, filled in the
// given order and closed when the next tensor would exceed max_shard_bytes (a tensor larger than
// the limit gets a shard of its own), plus model.safetensors.index.json with
// {"metadata": {"total_parameters", "total_size"}, "weight_map"}. Every shard carries `metadata`.
// Weight files of an earlier save in `dir` that this save does not overwrite (model.safetensors,
// the index, model-*-of-*.safetensors) are removed afterwards, so Checkpoint::open(dir) reads
// exactly these tensors. Each file is written atomically, the index last. Throws mlab::Error
// naming the path for duplicate names, unsupported dtypes and I/O failures; names and dtypes are
// checked before anything is written.
void save_checkpoint(const std::filesystem::path& dir,
                     const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                     const std::map<std::string, std::string>& metadata = {},
                     uint64_t max_shard_bytes = 0);

}  // namespace mlab::models
