#pragma once
// PNG encoder of the synthetic suite (issue F9), through libpng (the library datasets/image.cpp
// decodes with). Deterministic: fixed zlib level and filter, no timestamps or text chunks, so
// the same pixels give the same bytes with the same libpng/zlib.
#include <filesystem>

#include "datasets/image.hpp"

namespace mlab::synth {

// Writes `image` (RGB8) to `path` as an 8-bit RGB PNG, zlib level 6, PNG filter "up".
// Throws mlab::Error naming the path when the file cannot be written or the image is malformed.
void write_png(const std::filesystem::path& path, const datasets::Image& image);

}  // namespace mlab::synth
