// The eight task analogs of the synthetic suite (issue F9, docs/synth.md). Each generator draws
// the prompt-visible parts first, the answer from a per-prompt deck, then the picture.
// Doc schemas follow lmms-eval's datasets (docs/formats.md's table; tests/data/datasets).
#include "synth/task_generators.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "synth/bitmap_font.hpp"

namespace mlab::synth {

int Decks::draw(SynthRng& rng, const std::string& key, int m) {
  std::vector<int>& deck = decks_[key + "#" + std::to_string(m)];
  if (deck.empty()) deck = rng.permutation(m);
  const int v = deck.back();
  deck.pop_back();
  return v;
}

namespace {

using nlohmann::json;

// --- vocabularies ---------------------------------------------------------------------------

constexpr int kColors = 6;
constexpr std::array<const char*, kColors> kColorNames = {"red",    "green",  "blue",
                                                          "yellow", "purple", "orange"};
constexpr std::array<Rgb, kColors> kPalette = {Rgb{220, 30, 30},  Rgb{30, 160, 50},
                                               Rgb{30, 70, 220},  Rgb{240, 200, 20},
                                               Rgb{140, 50, 180}, Rgb{250, 130, 20}};
constexpr int kShapes = 5;
constexpr std::array<const char*, kShapes> kShapeNames = {"circle", "square", "triangle", "diamond",
                                                          "cross"};
constexpr std::array<const char*, kShapes> kShapePlurals = {"circles", "squares", "triangles",
                                                            "diamonds", "crosses"};
constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kWhite{255, 255, 255};

ShapeKind shape_kind(int s) { return static_cast<ShapeKind>(s); }

// Lengths are designed at 112 px and scaled to the image size.
int px(const GenContext& c, int v112) { return std::max(1, v112 * c.size / 112); }
int font_scale(const GenContext& c) { return std::max(1, c.size / 56); }

std::string letter(int i) { return std::string(1, static_cast<char>('A' + i)); }

// k distinct cells of a 3x3 grid, each shape of radius r jittered inside its cell.
std::vector<std::pair<int, int>> grid_positions(GenContext& c, int k, int r) {
  std::vector<int> cells = c.rng.permutation(9);
  const int cell = c.size / 3;
  const int slack = std::max(0, cell / 2 - r - 1);
  std::vector<std::pair<int, int>> out;
  for (int j = 0; j < k; ++j) {
    const int col = cells[j] % 3, row = cells[j] / 3;
    out.push_back({col * cell + cell / 2 + c.rng.range(-slack, slack),
                   row * cell + cell / 2 + c.rng.range(-slack, slack)});
  }
  return out;
}

// `k` distinct values of 0..m-1 other than those in `exclude`, in random order.
std::vector<int> pick_distinct(GenContext& c, int m, int k, const std::vector<int>& exclude) {
  std::vector<int> pool;
  for (int v = 0; v < m; ++v) {
    if (std::find(exclude.begin(), exclude.end(), v) == exclude.end()) pool.push_back(v);
  }
  c.rng.shuffle(pool);
  MLAB_CHECK(static_cast<int>(pool.size()) >= k, "synth: internal: cannot pick ", k, " of ",
             pool.size());
  pool.resize(k);
  return pool;
}

// Shapes of kinds `kinds` with distinct random colours (`colors` fixed when non-empty) in distinct
// grid cells.
void place_shapes(GenContext& c, Picture& p, const std::vector<int>& kinds,
                  std::vector<int> colors = {}) {
  if (colors.empty()) colors = pick_distinct(c, kColors, static_cast<int>(kinds.size()), {});
  const int r = c.rng.range(px(c, 12), px(c, 15));
  const auto pos = grid_positions(c, static_cast<int>(kinds.size()), r);
  for (std::size_t j = 0; j < kinds.size(); ++j) {
    p.shapes.push_back({shape_kind(kinds[j]), pos[j].first, pos[j].second, r, kPalette[colors[j]]});
  }
}

Picture blank(const GenContext& c) {
  Picture p;
  p.size = c.size;
  p.background = kWhite;
  return p;
}

std::string id_of(const GenContext&, std::int64_t i) { return std::to_string(i); }

// --- ai2d: labelled diagram, 4-way multiple choice ------------------------------------------
// Four shapes (circle, square, triangle, diamond) coloured red/green/blue/yellow, one per
// quadrant, each with a digit label 1-4 beside it. "Which shape has the label 3?" (options: the
// four shape names) or "What color is the shape with the label 3?" (options: the four colours).

void ai2d(GenContext& c, std::int64_t i, std::vector<SynthSample>& out) {
  const int qtype = c.decks.draw(c.rng, "type", 2);
  const int label = c.decks.draw(c.rng, "label", 4);  // 0..3 -> "1".."4"
  const int answer =
      c.decks.draw(c.rng, "q" + std::to_string(qtype) + "/" + std::to_string(label), 4);
  // shape_of_label[l], color_of_shape[s]: permutations, fixed so that the answer holds.
  std::vector<int> shape_of_label = c.rng.permutation(4);
  std::vector<int> color_of_shape = c.rng.permutation(4);
  if (qtype == 0) {
    std::swap(shape_of_label[label],
              shape_of_label[std::find(shape_of_label.begin(), shape_of_label.end(), answer) -
                             shape_of_label.begin()]);
  } else {
    const int s = shape_of_label[label];
    std::swap(color_of_shape[s],
              color_of_shape[std::find(color_of_shape.begin(), color_of_shape.end(), answer) -
                             color_of_shape.begin()]);
  }
  Picture p = blank(c);
  const std::vector<int> quadrant = c.rng.permutation(4);
  const int half = c.size / 2, r = px(c, 14), fs = font_scale(c);
  for (int l = 0; l < 4; ++l) {
    const int s = shape_of_label[l];
    const int qx = quadrant[l] % 2 * half, qy = quadrant[l] / 2 * half;
    const int jit = px(c, 3);
    const int cx = qx + half / 2 - px(c, 8) + c.rng.range(-jit, jit);
    const int cy = qy + half / 2 + c.rng.range(-jit, jit);
    p.shapes.push_back({shape_kind(s), cx, cy, r, kPalette[color_of_shape[s]]});
    // Label: a digit right of the shape, joined to it by a short black line (the diagram arrow).
    const int tx = cx + r + px(c, 5), ty = cy - kGlyphHeight * fs / 2;
    p.rects.push_back({cx + r - 1, cy - 1, tx, cy + 1, kBlack});
    p.texts.push_back({std::to_string(l + 1), tx, ty, fs, kBlack});
  }
  json options = json::array();
  std::string question;
  if (qtype == 0) {
    question = "Which shape has the label " + std::to_string(label + 1) + "?";
    for (int s = 0; s < 4; ++s) options.push_back(kShapeNames[s]);
  } else {
    question = "What color is the shape with the label " + std::to_string(label + 1) + "?";
    for (int k = 0; k < 4; ++k) options.push_back(kColorNames[k]);
  }
  SynthSample s;
  s.id = id_of(c, i);
  s.doc = {{"question", question}, {"options", options}, {"answer", std::to_string(answer)}};
  s.image_names = {s.id + ".png"};
  s.pictures = {std::move(p)};
  s.answer = letter(answer);
  out.push_back(std::move(s));
}

// --- gqa: short-answer scene questions ------------------------------------------------------
// 1-3 shapes of distinct kinds and colours. "What color is the triangle?" -> "blue" or
// "Which shape is blue?" -> "triangle".

void gqa(GenContext& c, std::int64_t i, std::vector<SynthSample>& out) {
  const int qtype = c.decks.draw(c.rng, "type", 2);
  const int k = c.rng.range(1, 3);
  std::vector<int> kinds, colors;
  std::string question, answer;
  if (qtype == 0) {
    const int s = c.decks.draw(c.rng, "subject", kShapes);
    const int col = c.decks.draw(c.rng, "color-of/" + std::to_string(s), kColors);
    kinds = {s};
    colors = {col};
    for (int v : pick_distinct(c, kShapes, k - 1, kinds)) kinds.push_back(v);
    for (int v : pick_distinct(c, kColors, k - 1, colors)) colors.push_back(v);
    question = std::string("What color is the ") + kShapeNames[s] + "?";
    answer = kColorNames[col];
  } else {
    const int col = c.decks.draw(c.rng, "subject-color", kColors);
    const int s = c.decks.draw(c.rng, "shape-of/" + std::to_string(col), kShapes);
    kinds = {s};
    colors = {col};
    for (int v : pick_distinct(c, kShapes, k - 1, kinds)) kinds.push_back(v);
    for (int v : pick_distinct(c, kColors, k - 1, colors)) colors.push_back(v);
    question = std::string("Which shape is ") + kColorNames[col] + "?";
    answer = kShapeNames[s];
  }
  Picture p = blank(c);
  place_shapes(c, p, kinds, colors);
  SynthSample smp;
  smp.id = id_of(c, i);
  smp.doc = {{"id", "synth" + smp.id}, {"imageId", "synth" + smp.id}, {"question", question},
             {"answer", answer},       {"fullAnswer", answer},        {"isBalanced", true}};
  smp.image_names = {smp.id + ".png"};
  smp.pictures = {std::move(p)};
  smp.answer = answer;
  out.push_back(std::move(smp));
}

// --- pope: object existence, random / popular / adversarial ---------------------------------
// Scenes of 1-4 shapes from a skewed prior with co-occurring pairs (the "train distribution").
// POPE (Li et al. 2023, §3) asks about present objects (yes) and absent ones chosen uniformly
// (random), by global frequency (popular) or by co-occurrence with the present ones
// (adversarial). Here the (object, yes/no) pair is drawn first, balanced per category, and the
// scene is sampled from the prior until the category's rule picks that object.

constexpr std::array<int, kShapes> kPopeWeight = {5, 4, 3, 2, 1};
bool pope_affine(int a, int b) {  // the co-occurring pairs of the prior
  auto pair = [&](int x, int y) { return (a == x && b == y) || (a == y && b == x); };
  return pair(0, 1) || pair(2, 3) || pair(3, 4);
}

std::vector<int> pope_scene(SynthRng& rng) {
  const int k = rng.range(1, 4);
  std::vector<int> present;
  for (int j = 0; j < k; ++j) {
    std::array<int, kShapes> w{};
    int total = 0;
    for (int o = 0; o < kShapes; ++o) {
      if (std::find(present.begin(), present.end(), o) != present.end()) continue;
      int boost = 1;
      for (int p : present) boost += pope_affine(o, p) ? 3 : 0;
      w[o] = kPopeWeight[o] * boost;
      total += w[o];
    }
    int x = static_cast<int>(rng.below(total));
    int o = 0;
    while (x >= w[o]) x -= w[o++];
    present.push_back(o);
  }
  return present;
}

struct PopeStats {
  std::array<int, kShapes> rank{};  // popularity order: rank[0] the most frequent object
  std::array<std::array<std::int64_t, kShapes>, kShapes> cooc{};
};

// Object and pair frequencies of the prior, counted as POPE counts its annotations (fixed seed:
// the same statistics for every suite seed).
const PopeStats& pope_stats() {
  static const PopeStats stats = [] {
    PopeStats s;
    std::array<std::int64_t, kShapes> freq{};
    SynthRng rng(stream_seed(0, "pope", "stats"));
    for (int t = 0; t < 20000; ++t) {
      const auto scene = pope_scene(rng);
      for (int a : scene) {
        ++freq[a];
        for (int b : scene) {
          if (a != b) ++s.cooc[a][b];
        }
      }
    }
    for (int o = 0; o < kShapes; ++o) s.rank[o] = o;
    std::stable_sort(s.rank.begin(), s.rank.end(), [&](int a, int b) { return freq[a] > freq[b]; });
    return s;
  }();
  return stats;
}

constexpr std::array<const char*, 3> kPopeCategories = {"adversarial", "popular", "random"};

// The absent object the category's rule asks about for `present` (random: uniform draw).
int pope_negative(SynthRng& rng, int category, const std::vector<int>& present) {
  const PopeStats& st = pope_stats();
  std::vector<int> absent;
  for (int o = 0; o < kShapes; ++o) {
    if (std::find(present.begin(), present.end(), o) == present.end()) absent.push_back(o);
  }
  if (absent.empty()) return -1;
  if (category == 2) return absent[rng.below(absent.size())];
  if (category == 1) {
    for (int o : st.rank) {
      if (std::find(absent.begin(), absent.end(), o) != absent.end()) return o;
    }
  }
  int best = -1;
  std::int64_t best_score = -1;
  for (int o : st.rank) {  // ties: the more popular object
    if (std::find(absent.begin(), absent.end(), o) == absent.end()) continue;
    std::int64_t score = 0;
    for (int p : present) score += st.cooc[p][o];
    if (score > best_score) best = o, best_score = score;
  }
  return best;
}

std::int64_t pope_units(std::int64_t n) { return 3 * n; }

void pope(GenContext& c, std::int64_t i, std::vector<SynthSample>& out) {
  const int category = c.train ? static_cast<int>(i % 3) : static_cast<int>(i / c.n);
  const std::string cat = kPopeCategories[category];
  const bool yes = c.decks.draw(c.rng, cat + "/answer", 2) == 0;
  const int obj = c.decks.draw(c.rng, cat + (yes ? "/yes" : "/no"), kShapes);
  std::vector<int> scene;
  for (int tries = 0;; ++tries) {
    MLAB_CHECK(tries < 100000, "synth pope: internal: no scene for ", kShapeNames[obj], " in ",
               cat);
    scene = pope_scene(c.rng);
    const bool has = std::find(scene.begin(), scene.end(), obj) != scene.end();
    if (yes ? has : (!has && pope_negative(c.rng, category, scene) == obj)) break;
  }
  Picture p = blank(c);
  place_shapes(c, p, scene);
  SynthSample s;
  s.id = std::to_string(i + 1);  // POPE's question_id counts from 1
  s.doc = {{"id", std::to_string(i)},
           {"question_id", s.id},
           {"question", std::string("Is there a ") + kShapeNames[obj] + " in the image?"},
           {"answer", yes ? "yes" : "no"},
           {"image_source", "synth_" + std::to_string(i)},
           {"category", cat}};
  s.image_names = {std::to_string(i) + ".png"};
  s.pictures = {std::move(p)};
  s.answer = yes ? "yes" : "no";
  out.push_back(std::move(s));
}

// --- seedbench: counting (image) and "in which frame" (video, 4 frames) -----------------------

void seedbench(GenContext& c, std::int64_t i, std::vector<SynthSample>& out) {
  const bool video = c.decks.draw(c.rng, "type", 4) == 0;  // a quarter are 4-frame videos
  const int target = c.decks.draw(c.rng, video ? "video-shape" : "count-shape", kShapes);
  const int answer =
      c.decks.draw(c.rng, std::string(video ? "video/" : "count/") + kShapeNames[target], 4);
  SynthSample s;
  s.id = std::to_string(100000 + i);
  std::string question;
  std::array<std::string, 4> choices;
  if (!video) {
    const int count = answer + 1;
    const int distract = c.rng.range(0, std::min(2, 5 - count));
    std::vector<int> kinds(count, target);
    for (int d = 0; d < distract; ++d) {
      kinds.push_back(pick_distinct(c, kShapes, 1, {target})[0]);
    }
    std::vector<int> colors;
    for (std::size_t j = 0; j < kinds.size(); ++j) colors.push_back(c.rng.range(0, kColors - 1));
    Picture p = blank(c);
    place_shapes(c, p, kinds, colors);
    s.pictures = {std::move(p)};
    s.image_names = {std::to_string(i) + ".png"};
    question = std::string("How many ") + kShapePlurals[target] + " are in the image?";
    choices = {"1", "2", "3", "4"};
  } else {
    for (int f = 0; f < 4; ++f) {
      std::vector<int> kinds = pick_distinct(c, kShapes, c.rng.range(1, 2), {target});
      if (f == answer) kinds.insert(kinds.begin() + c.rng.below(kinds.size() + 1), target);
      Picture p = blank(c);
      place_shapes(c, p, kinds);
      s.pictures.push_back(std::move(p));
      s.image_names.push_back(std::to_string(i) + "_" + std::to_string(f) + ".png");
    }
    question = std::string("In which frame is there a ") + kShapeNames[target] + "?";
    choices = {"Frame 1", "Frame 2", "Frame 3", "Frame 4"};
  }
  s.doc = {{"answer", letter(answer)},
           {"choice_a", choices[0]},
           {"choice_b", choices[1]},
           {"choice_c", choices[2]},
           {"choice_d", choices[3]},
           {"data_id", "synth_" + std::to_string(i)},
           {"data_type", video ? "video" : "image"},
           {"question", question},
           {"question_id", s.id},
           {"question_type_id", video ? 10 : 5},
           {"segment", video ? json::array({0, 4}) : json(nullptr)}};
  s.answer = letter(answer);
  out.push_back(std::move(s));
}

// --- realworldqa: spatial multiple choice, options inside the question ----------------------

void realworldqa(GenContext& c, std::int64_t i, std::vector<SynthSample>& out) {
  const int color = c.decks.draw(c.rng, "color", kColors);
  const int answer = c.decks.draw(c.rng, std::string("side/") + kColorNames[color], 4);
  // Regions of a 3x3 grid: left (0,1), right (2,1), top (1,0), bottom (1,2).
  constexpr std::array<std::pair<int, int>, 4> kRegion = {std::pair{0, 1}, std::pair{2, 1},
                                                          std::pair{1, 0}, std::pair{1, 2}};
  Picture p = blank(c);
  const int cell = c.size / 3;
  auto put_shape = [&](int region, int col) {
    const int r = c.rng.range(px(c, 12), px(c, 15));
    const int slack = std::max(0, cell / 2 - r - 1);
    const int cx = kRegion[region].first * cell + cell / 2 + c.rng.range(-slack, slack);
    const int cy = kRegion[region].second * cell + cell / 2 + c.rng.range(-slack, slack);
    p.shapes.push_back({shape_kind(c.rng.range(0, kShapes - 1)), cx, cy, r, kPalette[col]});
  };
  put_shape(answer, color);
  if (c.rng.below(2) == 1) {  // a distractor of another colour in another region
    const int region = pick_distinct(c, 4, 1, {answer})[0];
    put_shape(region, pick_distinct(c, kColors, 1, {color})[0]);
  }
  SynthSample s;
  s.id = id_of(c, i);
  s.doc = {{"question", std::string("Where is the ") + kColorNames[color] +
                            " shape in the image?\nA. Left\nB. Right\nC. Top\nD. Bottom\n"
                            "Please answer directly with only the letter of the correct option "
                            "and nothing else."},
           {"answer", letter(answer)}};
  s.image_names = {s.id + ".png"};
  s.pictures = {std::move(p)};
  s.answer = letter(answer);
  out.push_back(std::move(s));
}

// --- mmbench_en_dev: circular multiple choice -----------------------------------------------
// Four shapes (circle, square, triangle, diamond), one per quadrant, one clearly largest (or
// smallest). Each question comes with its circular copies (index + k * 1e6, options rotated by
// k), as MMBench's dev set; a question counts when every copy is right (CircularEval).

void mmbench(GenContext& c, std::int64_t i, std::vector<SynthSample>& out) {
  const int qtype = c.decks.draw(c.rng, "type", 2);                        // 0 largest, 1 smallest
  const int answer = c.decks.draw(c.rng, "q" + std::to_string(qtype), 4);  // main copy's letter
  Picture p = blank(c);
  const std::vector<int> quadrant = c.rng.permutation(4);
  const std::vector<int> colors = pick_distinct(c, kColors, 4, {});
  const int half = c.size / 2;
  for (int s = 0; s < 4; ++s) {
    int r;
    if (qtype == 0)
      r = s == answer ? px(c, 23) : c.rng.range(px(c, 9), px(c, 13));
    else
      r = s == answer ? px(c, 8) : c.rng.range(px(c, 16), px(c, 21));
    const int slack = std::max(0, half / 2 - r - 2);
    const int cx = quadrant[s] % 2 * half + half / 2 + c.rng.range(-slack, slack);
    const int cy = quadrant[s] / 2 * half + half / 2 + c.rng.range(-slack, slack);
    p.shapes.push_back({shape_kind(s), cx, cy, r, kPalette[colors[s]]});
  }
  const std::string question =
      qtype == 0 ? "Which shape is the largest?" : "Which shape is the smallest?";
  const std::string image = std::to_string(i) + ".png";
  // Train: one record, a random rotation (so the letters stay balanced); eval: all four.
  const int first = c.train ? c.decks.draw(c.rng, "rotation", 4) : 0;
  const int last = c.train ? first : 3;
  for (int k = first; k <= last; ++k) {
    const std::int64_t index = i + k * 1'000'000;
    SynthSample s;
    s.id = std::to_string(index);
    s.doc = {{"index", index},
             {"question", question},
             {"hint", nullptr},
             {"answer", letter(((answer - k) % 4 + 4) % 4)},
             {"category", "attribute_comparison"},
             {"L2-category", "finegrained_perception"},
             {"source", "mla-bench synth"},
             {"split", "dev"},
             {"comment", nullptr}};
    for (int j = 0; j < 4; ++j) s.doc[letter(j)] = kShapeNames[(j + k) % 4];
    s.image_names = {image};
    if (k == first) s.pictures = {p};
    s.answer = s.doc["answer"].get<std::string>();
    out.push_back(std::move(s));
  }
}

std::int64_t same_units(std::int64_t n) { return n; }

// --- chartqa: bar charts with value labels --------------------------------------------------
// 3-4 bars labelled A-D under the axis, values 1..9 or 10..90 written on top. "What is the value
// of C?" -> "7" or "Which bar is the highest?" -> "B". Relaxed accuracy.

void chartqa(GenContext& c, std::int64_t i, std::vector<SynthSample>& out) {
  const int qtype = c.decks.draw(c.rng, "type", 2);  // 0 value, 1 highest
  const int target = c.decks.draw(c.rng, "bar/" + std::to_string(qtype), 4);
  const int bars = target == 3 ? 4 : c.rng.range(3, 4);
  std::vector<int> units;  // 1..9 per bar, distinct
  int scale = 1;
  if (qtype == 0) {
    const int v = c.decks.draw(c.rng, "value/" + letter(target), 18);  // 0..8 x1, 9..17 x10
    scale = v < 9 ? 1 : 10;
    const int unit = v % 9 + 1;
    for (int u : pick_distinct(c, 9, bars - 1, {unit - 1})) units.push_back(u + 1);
    units.insert(units.begin() + target, unit);
  } else {
    scale = c.rng.below(2) == 0 ? 1 : 10;
    for (int u : pick_distinct(c, 9, bars, {})) units.push_back(u + 1);
    const int top = static_cast<int>(std::max_element(units.begin(), units.end()) - units.begin());
    std::swap(units[top], units[target]);
  }
  Picture p = blank(c);
  const int fs = font_scale(c);
  const int text_h = kGlyphHeight * fs;
  const int baseline = c.size - text_h - px(c, 6);
  const int top_room = text_h + px(c, 4);
  const int max_h = baseline - top_room - px(c, 2);
  const int margin = px(c, 4);
  const int slot = (c.size - 2 * margin) / bars;
  const int bar_w = slot * 6 / 10;
  const Rgb color = kPalette[c.rng.range(0, kColors - 1)];
  p.rects.push_back({margin, baseline, c.size - margin, baseline + std::max(1, px(c, 2)), kBlack});
  for (int b = 0; b < bars; ++b) {
    const int x0 = margin + b * slot + (slot - bar_w) / 2;
    const int h = std::max(1, max_h * units[b] / 9);
    p.rects.push_back({x0, baseline - h, x0 + bar_w, baseline, color});
    const std::string value = std::to_string(units[b] * scale);
    const int xc = x0 + bar_w / 2;
    p.texts.push_back(
        {value, xc - text_width(value, fs) / 2, baseline - h - text_h - px(c, 2), fs, kBlack});
    p.texts.push_back({letter(b), xc - text_width("A", fs) / 2, baseline + px(c, 4), fs, kBlack});
  }
  std::string question, answer;
  if (qtype == 0) {
    question = "What is the value of " + letter(target) + "?";
    answer = std::to_string(units[target] * scale);
  } else {
    question = "Which bar is the highest?";
    answer = letter(target);
  }
  SynthSample s;
  s.id = id_of(c, i);
  s.doc = {{"type", i % 2 == 0 ? "human_test" : "augmented_test"},
           {"question", question},
           {"answer", answer}};
  s.image_names = {s.id + ".png"};
  s.pictures = {std::move(p)};
  s.answer = answer;
  out.push_back(std::move(s));
}

// --- docvqa_val: a rendered key-value document, ANLS -----------------------------------------
// 3-5 lines "KEY: VAL". Within a key the values differ in every letter position, so no answer is
// within ANLS's 0.5 normalised edit distance of another (no partial credit between them).

struct DocField {
  const char* key;
  std::vector<const char*> values;
};
const std::vector<DocField>& doc_fields() {
  static const std::vector<DocField> fields = {
      {"NAME", {"BOB", "ANN", "TIM", "SUE", "KAY", "JED"}},
      {"PET", {"CAT", "DOG", "OWL", "EMU", "APE", "HEN"}},
      {"FOOD", {"PIE", "JAM", "EGG", "BUN", "TEA", "COD"}},
      {"TOOL", {"AXE", "SAW", "PEN", "MOP", "JUG", "LID"}},
      {"RIDE", {"VAN", "BUS", "JET", "UFO", "ARK", "SKI"}},
      {"DAY", {"MON", "TUE", "WED", "FRI", "SAT"}},
  };
  return fields;
}

void docvqa(GenContext& c, std::int64_t i, std::vector<SynthSample>& out) {
  const auto& fields = doc_fields();
  const int nf = static_cast<int>(fields.size());
  const int asked = c.decks.draw(c.rng, "key", nf);
  const int value = c.decks.draw(c.rng, std::string("value/") + fields[asked].key,
                                 static_cast<int>(fields[asked].values.size()));
  const int lines = c.rng.range(3, 5);
  std::vector<int> keys = pick_distinct(c, nf, lines - 1, {asked});
  keys.insert(keys.begin() + c.rng.below(keys.size() + 1), asked);
  Picture p = blank(c);
  const int fs = font_scale(c);
  const int line_h = (kGlyphHeight + 3) * fs;
  const int y0 = (c.size - lines * line_h) / 2 + c.rng.range(-fs, fs);
  p.rects.push_back({0, 0, c.size, std::max(1, px(c, 3)), Rgb{120, 120, 120}});  // letterhead
  for (int l = 0; l < lines; ++l) {
    const DocField& f = fields[keys[l]];
    const int v = keys[l] == asked ? value : c.rng.range(0, static_cast<int>(f.values.size()) - 1);
    const std::string text = std::string(f.key) + ": " + f.values[v];
    const int room = std::max(0, c.size - text_width(text, fs) - 2 * fs);
    p.texts.push_back(
        {text, fs + c.rng.range(0, std::min(room, 3 * fs)), y0 + l * line_h + fs, fs, kBlack});
  }
  const std::string answer = fields[asked].values[value];
  SynthSample s;
  s.id = std::to_string(50000 + i);
  s.doc = {{"questionId", s.id},
           {"question", std::string("What is the ") + fields[asked].key + "?"},
           {"question_types", json::array({"form"})},
           {"docId", i},
           {"ucsf_document_id", "synth" + std::to_string(i)},
           {"ucsf_document_page_no", "1"},
           {"answers", json::array({answer})},
           {"data_split", "val"}};
  s.image_names = {std::to_string(i) + ".png"};
  s.pictures = {std::move(p)};
  s.answer = answer;
  out.push_back(std::move(s));
}

double docvqa_chance() {
  double sum = 0;
  for (const auto& f : doc_fields()) sum += 1.0 / static_cast<double>(f.values.size());
  return sum / static_cast<double>(doc_fields().size());
}

}  // namespace

const std::vector<TaskGenerator>& task_generators() {
  // Chance: the best blind guesser's expected headline score (docs/synth.md derives each).
  static const std::vector<TaskGenerator> generators = {
      {"ai2d", "labelled shapes, 4-way multiple choice (shape or colour of label N)", 0.25,
       same_units, ai2d},
      {"gqa", "colour of a named shape / shape of a named colour, exact match",
       0.5 / kColors + 0.5 / kShapes, same_units, gqa},
      {"pope", "is there a <shape>? yes/no, adversarial/popular/random (F1 of always-yes)",
       2.0 / 3.0, pope_units, pope},
      {"seedbench", "counting (image) and which-frame (4-frame video), 4 choices", 0.25, same_units,
       seedbench},
      {"realworldqa", "where is the <colour> shape: left/right/top/bottom, letter", 0.25,
       same_units, realworldqa},
      {"mmbench_en_dev", "largest/smallest shape, circular 4-way (4 copies per question)", 0.25,
       same_units, mmbench},
      {"chartqa", "bar chart value / highest bar, relaxed accuracy", 0.5 / 18.0 + 0.5 / 4.0,
       same_units, chartqa},
      {"docvqa_val", "key-value document, what is the KEY? (ANLS)", docvqa_chance(), same_units,
       docvqa},
  };
  return generators;
}

const TaskGenerator& find_task_generator(std::string_view task) {
  std::vector<std::string> names;
  for (const auto& g : task_generators()) {
    if (g.task == task) return g;
    names.emplace_back(g.task);
  }
  throw Error(unknown_name_message("synth task", task, names));
}

}  // namespace mlab::synth
