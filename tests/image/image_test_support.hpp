#pragma once
// Fixture access for the models/image tests: tests/data/images
// (tools/fixtures/make_image_fixtures.py).
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/image.hpp"
#include "models/image/rgb8_image.hpp"
#include "models/io/safetensors.hpp"
#include "tests/support/catch_torch.hpp"

namespace mlab::test {

inline std::filesystem::path image_dir() { return data_dir() / "images"; }
inline std::filesystem::path image_reference_dir() { return image_dir() / "reference"; }

// The images of the fixture (file names under tests/data/images).
inline const std::vector<std::string>& fixture_images() {
  static const std::vector<std::string> names = {
      "tiny.png", "wide.jpg", "tall.png", "gray.png", "rgba.png", "large.jpg", "portrait_gray.jpg"};
  return names;
}

inline std::string stem(const std::string& file) { return file.substr(0, file.rfind('.')); }

// Decodes `path` with datasets::decode_image (Pillow's pixels) into an Rgb8Image.
inline image::Rgb8Image decode_rgb8(const std::filesystem::path& path) {
  datasets::Image d = datasets::decode_image(path);
  return image::make_rgb8_image(d.width, d.height, std::move(d.rgb));
}

// What transformers' processors saw for `file`: Pillow's decode after convert_to_rgb, stored
// losslessly as reference/<stem>.input.png.
inline image::Rgb8Image pillow_input(const std::string& file) {
  return decode_rgb8(image_reference_dir() / (stem(file) + ".input.png"));
}

// The elements of tensor `name` of `file`, copied out as T (the dtype must have sizeof(T) bytes).
template <class T>
std::vector<T> read_tensor(const models::SafetensorsFile& file, const std::string& name) {
  const models::TensorInfo& info = file.at(name);
  REQUIRE(models::dtype_size(info.dtype) == sizeof(T));
  std::vector<T> out(info.numel());
  const auto bytes = file.bytes(info);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

// The fixture's sample of n elements: every max(1, n / 4000)-th index and the last one.
inline std::vector<int64_t> sample_indices(int64_t n) {
  const int64_t step = std::max<int64_t>(1, n / 4000);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; i += step) idx.push_back(i);
  if (idx.empty() || idx.back() != n - 1) idx.push_back(n - 1);
  return idx;
}

}  // namespace mlab::test
