#pragma once
// Small string helpers shared by every layer: edit distance for "did you mean" answers, joins.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlab {

// Levenshtein distance (insert, delete, substitute each cost 1), case-sensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `name` by edit distance (ties: the first in order), compared
// case-insensitively; nullopt when `candidates` is empty or the best is too far to be a typo
// (distance > max(2, |name| / 2)).
std::optional<std::string> closest_match(std::string_view name,
                                         const std::vector<std::string>& candidates);

// "a, b, c"
std::string join(const std::vector<std::string>& parts, std::string_view separator);

// Exception message for an unknown registry key: names the kind, the key, the known keys and the
// closest match, e.g. "unknown method 'h20'; did you mean 'h2o'? known: full, h2o, tova".
std::string unknown_name_message(std::string_view kind, std::string_view name,
                                 const std::vector<std::string>& known);

// The current time as std::strftime formats it, in UTC or local time (e.g. "%Y%m%d_%H%M%S",
// lmms-eval's date stamp, or "%Y-%m-%dT%H:%M:%SZ").
std::string format_now(const char* strftime_format, bool utc);

// `text` for HTML and SVG/XML text and attribute values: & < > " ' as entities, a newline as
// &#10;, other control characters (not allowed in XML) as a space.
std::string html_escape(std::string_view text);

}  // namespace mlab
