#pragma once
// One loader per benchmark (issue F4): checks that an lmms-eval record has the fields its task
// reads (specs/benchmarks.md §4) and fills Sample's typed view. The explicit table in
// sample_loaders.cpp is keyed by the task names of datasets/datasets.def.
#include <string_view>

#include "datasets/dataset_reader.hpp"

namespace mlab::datasets {

// Fills sample.question/options/answers/category/circular_* from sample.doc. Throws mlab::Error
// "<task>: ..." naming the missing or mistyped field.
using SampleLoader = void (*)(Sample& sample);

// The loader of `task` (canonical lmms-eval name); throws mlab::Error for tasks without one.
SampleLoader sample_loader(std::string_view task);

}  // namespace mlab::datasets
