#pragma once
// The synthetic suite's own 5x7 bitmap font (no font file, no TrueType): upper-case A-Z, digits
// 0-9, space and : . - ? / % ( ), drawn at an integer scale so that at the default 112 px image
// (scale 2) a glyph is 10 x 14 px. Designed for the synth images of issue F9 (docs/synth.md).
#include <array>
#include <cstdint>
#include <string_view>

namespace mlab::synth {

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 7;
constexpr int kGlyphAdvance = 6;  // glyph width + one column of spacing, in font pixels

// Rows top to bottom; bit 4 of a row is the leftmost column.
using Glyph = std::array<std::uint8_t, kGlyphHeight>;

// The glyph of `c` (lower-case letters map to upper case). Throws mlab::Error naming the
// character when the font has no glyph for it.
const Glyph& glyph(char c);

// True when every character of `text` has a glyph.
bool font_covers(std::string_view text);

// Width in image pixels of `text` drawn at `scale` (the last glyph's spacing column excluded).
int text_width(std::string_view text, int scale);

}  // namespace mlab::synth
