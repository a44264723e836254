// ds_check <dataset dir> <task>: reads a dataset dir with datasets::DatasetReader (images decoded)
// and prints one JSON line per sample with its typed fields, for the export tool's round trip
// (tools/fixtures/check_export_datasets.py). Exit 1 with the reader's message on failure.
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "datasets/dataset_reader.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: ds_check <dataset dir> <task>\n";
    return 2;
  }
  try {
    mlab::datasets::DatasetReader reader(argv[1], argv[2], {.decode_images = true});
    mlab::datasets::Sample s;
    while (reader.next(s)) {
      nlohmann::json sizes = nlohmann::json::array();
      nlohmann::json sums = nlohmann::json::array();  // sum of the RGB bytes, per image
      for (const auto& image : s.pixels) {
        sizes.push_back({image.width, image.height});
        std::uint64_t sum = 0;
        for (std::uint8_t v : image.rgb) sum += v;
        sums.push_back(sum);
      }
      std::cout << nlohmann::json{{"row", s.row},
                                  {"id", s.id},
                                  {"image_sizes", sizes},
                                  {"rgb_sums", sums},
                                  {"question", s.question},
                                  {"options", s.options},
                                  {"answers", s.answers},
                                  {"category", s.category},
                                  {"circular_group", s.circular_group},
                                  {"doc", s.doc}}
                       .dump()
                << "\n";
    }
  } catch (const mlab::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
