#pragma once
// The eight synthetic task analogs of `mla-bench synth` (issue F9, docs/synth.md): for each
// lmms-eval task, a generator of samples whose `doc` is in that task's lmms-eval schema (so the
// real prompt renderer and metric apply unchanged), with pictures described as display lists.
// Registry: the explicit list task_generators() (STYLE.md rule 3).
//
// Balance (the blind bound): every generator first draws what the prompt text shows (question,
// options), then the answer from a shuffled deck kept per prompt key, then builds the picture
// that makes the answer true. Answers are uniform given the prompt text, so a model that does
// not see the image scores `chance` in expectation.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "synth/picture.hpp"
#include "synth/synth_rng.hpp"

namespace mlab::synth {

// One generated sample (eval) or record (train).
struct SynthSample {
  std::string id;                        // unique in its set
  nlohmann::json doc;                    // lmms-eval schema of the task
  std::vector<std::string> image_names;  // relative file names, e.g. "12.png", "3_0.png"
  // Pictures to write, parallel to the first pictures.size() image names (MMBench's circular
  // copies reuse the main question's file and carry none).
  std::vector<Picture> pictures;
  std::string answer;  // the best-scoring answer text: option letter, yes/no, word, number
};

// Shuffled decks per key: draw(key, m) returns 0..m-1 with every value once per m draws.
class Decks {
 public:
  int draw(SynthRng& rng, const std::string& key, int m);

 private:
  std::map<std::string, std::vector<int>> decks_;
};

// Generation state of one stream (one task, one split).
struct GenContext {
  SynthRng rng;
  Decks decks;
  int size = 112;      // image side, pixels
  bool train = false;  // train records: one sample per unit (MMBench: one random rotation)
  std::int64_t n = 0;  // eval: samples per split (POPE: per category; MMBench: questions)
};

struct TaskGenerator {
  std::string_view task;     // lmms-eval task name
  std::string_view summary;  // one line for docs and --help
  // Expected headline score of the best blind guesser, as a fraction (MMBench: gpt_eval_score
  // / 100). See docs/synth.md for each derivation.
  double chance;
  // Eval: how many units make the set of `n` (POPE 3n: one block per category).
  std::int64_t (*units)(std::int64_t n);
  // Appends unit `i`'s samples (MMBench eval: the question and its 3 circular copies).
  void (*generate)(GenContext& ctx, std::int64_t i, std::vector<SynthSample>& out);
};

// The eight generators in the order of `mla-bench synth` (ai2d gqa pope seedbench realworldqa
// mmbench_en_dev chartqa docvqa_val).
const std::vector<TaskGenerator>& task_generators();

// The generator of `task` (canonical lmms-eval name); throws mlab::Error listing the known
// tasks and the closest match.
const TaskGenerator& find_task_generator(std::string_view task);

}  // namespace mlab::synth
