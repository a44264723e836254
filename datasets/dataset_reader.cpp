#include "datasets/dataset_reader.hpp"

#include <fstream>
#include <iterator>
#include <system_error>

#include "core/error.hpp"
#include "core/json_depth.hpp"
#include "datasets/sample_loaders.hpp"
#include "evaluators/task_scoring.hpp"

namespace mlab::datasets {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "mla-bench-dataset";
constexpr int kVersion = 1;

DatasetInfo read_info(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "dataset.json";
  std::ifstream in(path);
  MLAB_CHECK(in.good(), path.string(), ": missing (every dataset dir has a dataset.json)");
  json meta;
  try {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    check_json_depth(text, path.string());  // F11 D1: a deep file overflows the stack
    meta = json::parse(text);
  } catch (const json::parse_error& e) {
    MLAB_FAIL(path.string(), ": malformed JSON: ", e.what());
  }
  MLAB_CHECK(meta.is_object(), path.string(), ": expected a JSON object");
  for (const auto& [key, value] : meta.items()) {
    MLAB_CHECK(
        key == "format" || key == "version" || key == "task" || key == "source" || key == "samples",
        path.string(), ": unknown key '", key, "' (known: format, version, task, source, samples)");
  }
  MLAB_CHECK(meta.value("format", json()) == kFormat, path.string(), ": 'format' must be \"",
             kFormat, "\"");
  MLAB_CHECK(meta.value("version", json()) == kVersion, path.string(), ": 'version' must be ",
             kVersion, ", got ", meta.value("version", json()).dump());
  DatasetInfo info;
  MLAB_CHECK(meta.contains("task") && meta["task"].is_string(), path.string(),
             ": 'task' must be a string");
  info.task = meta["task"].get<std::string>();
  info.source = meta.value("source", json::object());
  const json samples = meta.value("samples", json());
  MLAB_CHECK(samples.is_number_integer() && samples.get<std::int64_t>() >= 0, path.string(),
             ": 'samples' must be a non-negative integer, got ", samples.dump());
  info.samples = samples.get<std::int64_t>();
  return info;
}

// "images/x.png" inside the dir: no absolute paths, no "..".
std::filesystem::path image_path(const std::filesystem::path& dir, const json& entry,
                                 const std::string& where) {
  MLAB_CHECK(entry.is_string(), where, ": 'images' must hold file names, got ", entry.type_name());
  const std::filesystem::path rel(entry.get<std::string>());
  MLAB_CHECK(!rel.empty() && rel.is_relative(), where, ": image path '", rel.string(),
             "' must be relative to the dataset dir");
  for (const auto& part : rel) {
    MLAB_CHECK(part != "..", where, ": image path '", rel.string(), "' leaves the dataset dir");
  }
  // F11 D2: the text check alone let a symlink (an image, or images/ itself) point outside the
  // dir. Resolve both sides and require the image to lie under the root, component by component.
  std::error_code ec;
  const std::filesystem::path root = std::filesystem::weakly_canonical(dir, ec);
  MLAB_CHECK(!ec, dir.string(), ": cannot resolve the dataset dir: ", ec.message());
  const std::filesystem::path full = std::filesystem::weakly_canonical(dir / rel, ec);
  MLAB_CHECK(!ec, where, ": image path '", rel.string(), "' cannot be resolved: ", ec.message());
  auto r = root.begin();
  auto f = full.begin();
  for (; r != root.end() && !r->empty(); ++r, ++f) {
    MLAB_CHECK(f != full.end() && *f == *r, where, ": image path '", rel.string(),
               "' resolves outside the dataset dir (to ", full.string(), ", not under ",
               root.string(), ")");
  }
  return dir / rel;
}

}  // namespace

DatasetReader::DatasetReader(std::filesystem::path dir, std::string_view task,
                             DatasetOptions options)
    : dir_(std::move(dir)), options_(options) {
  MLAB_CHECK(std::filesystem::is_directory(dir_), dir_.string(),
             ": not a dataset dir (missing or not a directory)");
  dir_ = std::filesystem::absolute(dir_);
  info_ = read_info(dir_);
  const std::string wanted = evaluators::canonical_task(task);
  MLAB_CHECK(evaluators::canonical_task(info_.task) == wanted, dir_.string(),
             "/dataset.json: holds task '", info_.task, "', expected '", wanted, "'");
  info_.task = wanted;
  sample_loader(wanted);  // every task has a loader
  reader_ = std::make_unique<JsonlReader>(dir_ / "samples.jsonl");
}

DatasetReader::~DatasetReader() = default;

bool DatasetReader::next(Sample& sample) {
  sample = Sample{};
  json line;
  bool got = false;
  try {
    got = reader_->next(line);
    if (got) read_sample(line, sample);
  } catch (const Error& e) {
    if (!options_.skip_bad || reader_->line() == 0) throw;
    // Record, never drop: the row keeps its place; the id is the line's when it was readable.
    sample.error = e.what();
    got = true;
  }
  if (!got) {
    check_sample_count(rows_);
    return false;
  }
  sample.row = rows_++;
  if (sample.failed()) {
    ++failed_;
    if (sample.id.empty()) sample.id = "line " + std::to_string(reader_->line());
  }
  return true;
}

// The count check of docs/formats.md: samples.jsonl holds exactly dataset.json's 'samples'
// records (next() applies it at the end of the file, check_count() before a run).
void DatasetReader::check_sample_count(std::int64_t found) const {
  MLAB_CHECK(found == info_.samples, reader_->path().string(), ": holds ", found,
             " samples, dataset.json says ", info_.samples, " (", (dir_ / "dataset.json").string(),
             found < info_.samples ? "; truncated export?)" : "; more records than it counts)");
}

void DatasetReader::check_count() const {
  // Every non-blank line is a record; a malformed one still counts (under skip_bad it is a
  // failed sample, without it next() rejects it where it stands).
  JsonlReader lines(reader_->path());
  std::int64_t found = 0;
  json line;
  for (;;) {
    const std::int64_t before = lines.line();
    try {
      if (!lines.next(line, /*require_object=*/false)) break;
    } catch (const Error&) {
      if (lines.line() == before) throw;  // a read error, not a bad line
    }
    ++found;
  }
  check_sample_count(found);
}

void DatasetReader::read_sample(const json& line, Sample& sample) {
  const std::string where = reader_->where();
  for (const auto& [key, value] : line.items()) {
    MLAB_CHECK(key == "id" || key == "images" || key == "doc", where, ": unknown field '", key,
               "' (a sample has id, images, doc)");
  }
  sample.id = required_string(line, "id", where);
  MLAB_CHECK(!sample.id.empty(), where, ": field 'id' is empty");
  auto doc = line.find("doc");
  MLAB_CHECK(doc != line.end(), where, ": missing field 'doc'");
  MLAB_CHECK(doc->is_object(), where, ": field 'doc' must be an object, got ", doc->type_name());
  sample.doc = *doc;
  auto images = line.find("images");
  MLAB_CHECK(images != line.end(), where, ": missing field 'images'");
  MLAB_CHECK(images->is_array() && !images->empty(), where,
             ": field 'images' must be a non-empty list of file names");
  MLAB_CHECK(ids_.insert(sample.id).second, where, ": duplicate id '", sample.id, "'");
  try {
    sample_loader(info_.task)(sample);
    for (const json& entry : *images) {
      sample.images.push_back(image_path(dir_, entry, where));
      if (options_.decode_images) {
        sample.pixels.push_back(decode_image(sample.images.back()));
      } else if (options_.check_images) {
        read_image_info(sample.images.back());
      }
    }
  } catch (const Error& e) {
    MLAB_FAIL(where, ": sample '", sample.id, "': ", e.what());
  }
}

std::vector<Sample> read_dataset(const std::filesystem::path& dir, std::string_view task,
                                 DatasetOptions options) {
  DatasetReader reader(dir, task, options);
  std::vector<Sample> samples;
  Sample sample;
  while (reader.next(sample)) samples.push_back(std::move(sample));
  return samples;
}

}  // namespace mlab::datasets
