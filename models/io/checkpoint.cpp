// Hugging Face safetensors checkpoints: single files and sharded directories
// (model.safetensors.index.json: {"metadata": {"total_size": N, ...}, "weight_map": {tensor:
// file}}).
#include "models/io/checkpoint.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_set>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "models/io/tensor_io.hpp"

namespace mlab::models {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

std::string brief(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// "model-00001-of-00003.safetensors" (five or more digits each, as transformers names shards).
bool is_shard_name(std::string_view name) {
  constexpr std::string_view kPrefix = "model-", kMiddle = "-of-", kSuffix = ".safetensors";
  if (name.substr(0, kPrefix.size()) != kPrefix || !ends_with(name, kSuffix)) return false;
  const std::string_view core =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  const auto middle = core.find(kMiddle);
  if (middle == std::string_view::npos) return false;
  auto digits = [](std::string_view s) {
    return s.size() >= 5 && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  return digits(core.substr(0, middle)) && digits(core.substr(middle + kMiddle.size()));
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  MLAB_CHECK(in.good(), path.string(), ": cannot open for reading");
  std::ostringstream out;
  out << in.rdbuf();
  MLAB_CHECK(!in.bad(), path.string(), ": read failed");
  return out.str();
}

// A weight_map value must name a file inside the checkpoint directory.
void check_shard_file(const std::string& index, const std::string& tensor,
                      const std::string& file) {
  const fs::path p(file);
  bool inside = !file.empty() && p.is_relative() && p.has_filename();
  for (const auto& part : p) inside = inside && part != "..";
  MLAB_CHECK(inside, index, ": weight_map['", tensor, "'] = '", file,
             "' is not a file name inside the checkpoint directory");
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& dir_or_file) {
  std::error_code error;
  const auto status = fs::status(dir_or_file, error);
  MLAB_CHECK(fs::exists(status), dir_or_file.string(), ": no such file or directory");
  if (fs::is_directory(status)) {
    if (fs::is_regular_file(dir_or_file / kSingleName)) {
      return open_single(dir_or_file, dir_or_file / kSingleName);
    }
    if (fs::is_regular_file(dir_or_file / kIndexName)) {
      return open_index(dir_or_file, dir_or_file / kIndexName);
    }
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(dir_or_file, error)) {
      if (ends_with(entry.path().filename().string(), ".safetensors")) {
        found.push_back(entry.path().filename().string());
      }
    }
    std::sort(found.begin(), found.end());
    MLAB_FAIL(dir_or_file.string(), ": no ", kSingleName, " or ", kIndexName, " in this directory",
              found.empty() ? std::string(" (and no .safetensors files)")
                            : "; it holds " + join(found, ", "));
  }
  if (ends_with(dir_or_file.filename().string(), ".index.json")) {
    return open_index(dir_or_file, dir_or_file);
  }
  return open_single(dir_or_file, dir_or_file);
}

Checkpoint Checkpoint::open_single(const fs::path& given, const fs::path& file) {
  Checkpoint checkpoint;
  checkpoint.path_ = given;
  checkpoint.shards_.push_back(SafetensorsFile::open(file));
  checkpoint.index_tensors();
  return checkpoint;
}

Checkpoint Checkpoint::open_index(const fs::path& given, const fs::path& index) {
  const std::string name = index.string();
  const std::string text = read_text(index);
  detail::check_utf8(text, name, "index");
  const json root = detail::parse_json_strict(text, name, "index");
  MLAB_CHECK(root.is_object(), name, ": index must be a JSON object, got ", brief(root));
  MLAB_CHECK(root.contains("weight_map"), name, ": index has no 'weight_map'");
  const json& weight_map = root.at("weight_map");
  MLAB_CHECK(weight_map.is_object(), name,
             ": 'weight_map' must be an object of tensor name -> shard file, got ",
             brief(weight_map));

  Checkpoint checkpoint;
  checkpoint.path_ = given;
  checkpoint.sharded_ = true;
  if (root.contains("metadata")) {
    const json& metadata = root.at("metadata");
    MLAB_CHECK(metadata.is_object(), name, ": 'metadata' must be an object, got ", brief(metadata));
    if (metadata.contains("total_size")) {
      const json& total = metadata.at("total_size");
      MLAB_CHECK(total.is_number_unsigned(), name,
                 ": metadata.total_size must be a non-negative integer, got ", brief(total));
      checkpoint.index_total_size_ = total.get<uint64_t>();
    }
  }

  std::map<std::string, std::set<std::string>>
      listed;                                   // shard file -> tensors the index puts there
  std::map<std::string, std::string> shard_of;  // tensor -> shard file
  for (const auto& item : weight_map.items()) {
    MLAB_CHECK(item.value().is_string(), name, ": weight_map['", item.key(),
               "'] must be a shard file name (a string), got ", brief(item.value()));
    const std::string& file = item.value().get_ref<const std::string&>();
    check_shard_file(name, item.key(), file);
    listed[file].insert(item.key());
    shard_of.emplace(item.key(), file);
  }

  const fs::path dir = index.parent_path();
  std::vector<std::string> shard_files;
  for (const auto& [file, tensors] : listed) {
    const fs::path shard_path = dir / file;
    MLAB_CHECK(fs::is_regular_file(shard_path), name, ": shard '", file, "' (listed for ",
               tensors.size(), " tensors, e.g. '", *tensors.begin(),
               "') does not exist: ", shard_path.string());
    checkpoint.shards_.push_back(SafetensorsFile::open(shard_path));
    shard_files.push_back(file);
  }

  for (std::size_t s = 0; s < checkpoint.shards_.size(); ++s) {
    const SafetensorsFile& shard = checkpoint.shards_[s];
    const std::string& file = shard_files[s];
    const auto& expected = listed.at(file);
    for (const auto& tensor : expected) {
      if (shard.find(tensor)) continue;
      std::string message =
          name + ": tensor '" + tensor + "' is listed in shard '" + file + "' but absent from it";
      if (auto match = closest_match(tensor, shard.names())) {
        message += "; the shard has '" + *match + "'";
      }
      throw Error(message);
    }
    std::vector<std::string> unlisted;
    for (const auto& info : shard.tensors()) {
      if (expected.count(info.name)) continue;
      const auto other = shard_of.find(info.name);
      MLAB_CHECK(other == shard_of.end(), name, ": tensor '", info.name,
                 "' is present in two shards, '", other->second,
                 "' (where the index puts it) and '", file, "'");
      unlisted.push_back(info.name);
    }
    if (!unlisted.empty()) {
      std::sort(unlisted.begin(), unlisted.end());
      if (unlisted.size() > 8) {
        const auto more = unlisted.size() - 8;
        unlisted.resize(8);
        unlisted.push_back("... (" + std::to_string(more) + " more)");
      }
      MLAB_FAIL(name, ": shard '", file,
                "' holds tensors not listed in the weight_map: ", join(unlisted, ", "));
    }
  }
  checkpoint.index_tensors();
  return checkpoint;
}

void Checkpoint::index_tensors() {
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    for (const auto& info : shards_[s].tensors()) {
      const bool inserted = locations_.emplace(info.name, Location{s, &info}).second;
      MLAB_CHECK(inserted, path_.string(), ": tensor '", info.name, "' is present in two shards");
      names_.push_back(info.name);
    }
  }
  std::sort(names_.begin(), names_.end());
}

const Checkpoint::Location& Checkpoint::locate(std::string_view name) const {
  const auto it = locations_.find(name);
  if (it != locations_.end()) return it->second;
  std::string message = path_.string() + ": no tensor '" + std::string(name) + "' in checkpoint";
  if (auto match = closest_match(name, names_)) message += "; did you mean '" + *match + "'?";
  message += " (it holds " + std::to_string(names_.size()) + " tensors)";
  throw Error(message);
}

const TensorInfo& Checkpoint::info(std::string_view name) const { return *locate(name).info; }

const SafetensorsFile& Checkpoint::file_of(std::string_view name) const {
  return shards_[locate(name).shard];
}

at::Tensor Checkpoint::get(std::string_view name) const {
  const Location& location = locate(name);
  return load_tensor(shards_[location.shard], *location.info);
}

const std::map<std::string, std::string>& Checkpoint::metadata() const {
  static const std::map<std::string, std::string> kEmpty;
  return shards_.empty() ? kEmpty : shards_.front().metadata();
}

void save_checkpoint(const fs::path& dir,
                     const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                     const std::map<std::string, std::string>& metadata, uint64_t max_shard_bytes) {
  // Check everything that can be checked before the first byte is written.
  std::unordered_set<std::string_view> seen;
  uint64_t total_bytes = 0, total_parameters = 0;
  for (const auto& [name, tensor] : tensors) {
    MLAB_CHECK(seen.insert(name).second, dir.string(), ": duplicate tensor name '", name, "'");
    MLAB_CHECK(tensor.defined(), dir.string(), ": tensor '", name, "' is undefined");
    try {
      from_scalar_type(tensor.scalar_type());
    } catch (const Error& e) {
      MLAB_FAIL(dir.string(), ": tensor '", name, "': ", e.what());
    }
    total_bytes += tensor.nbytes();
    total_parameters += static_cast<uint64_t>(tensor.numel());
  }
  std::error_code error;
  fs::create_directories(dir, error);
  MLAB_CHECK(!error && fs::is_directory(dir), dir.string(),
             ": cannot create directory: ", error.message());

  // Greedy split in the given order (huggingface_hub split_torch_state_dict_into_shards).
  std::vector<std::vector<std::size_t>> groups(1);
  uint64_t group_bytes = 0;
  if (max_shard_bytes > 0 && total_bytes > max_shard_bytes) {
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const uint64_t bytes = tensors[i].second.nbytes();
      if (!groups.back().empty() && group_bytes + bytes > max_shard_bytes) {
        groups.emplace_back();
        group_bytes = 0;
      }
      groups.back().push_back(i);
      group_bytes += bytes;
    }
  } else {
    for (std::size_t i = 0; i < tensors.size(); ++i) groups[0].push_back(i);
  }

  std::set<std::string> written;
  if (groups.size() == 1) {
    save_safetensors(dir / kSingleName, tensors, metadata);
    written.insert(kSingleName);
  } else {
    json weight_map = json::object();
    for (std::size_t g = 0; g < groups.size(); ++g) {
      char file[64];
      std::snprintf(file, sizeof(file), "model-%05zu-of-%05zu.safetensors", g + 1, groups.size());
      std::vector<std::pair<std::string, at::Tensor>> shard;
      for (const std::size_t i : groups[g]) {
        shard.push_back(tensors[i]);
        weight_map[tensors[i].first] = file;
      }
      save_safetensors(dir / file, shard, metadata);
      written.insert(file);
    }
    const json index = {
        {"metadata", {{"total_parameters", total_parameters}, {"total_size", total_bytes}}},
        {"weight_map", weight_map}};
    // As transformers writes it: json.dumps(index, indent=2, sort_keys=True) + "\n".
    const std::string text = index.dump(2, ' ', /*ensure_ascii=*/true) + "\n";
    detail::write_file_atomic(dir / kIndexName,
                              {{reinterpret_cast<const std::byte*>(text.data()), text.size()}});
    written.insert(kIndexName);
  }

  // Remove weight files of an earlier save that would shadow or contradict this one.
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    const std::string file = entry.path().filename().string();
    const bool weight_file = file == kSingleName || file == kIndexName || is_shard_name(file);
    if (weight_file && !written.count(file) && entry.is_regular_file()) {
      std::error_code remove_error;
      fs::remove(entry.path(), remove_error);
      MLAB_CHECK(!remove_error, entry.path().string(),
                 ": cannot remove stale weight file: ", remove_error.message());
    }
  }
}

}  // namespace mlab::models
