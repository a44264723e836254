#pragma once
// A small well-formedness checker for the dashboard's XHTML-compatible HTML: every element is
// closed in order (void elements self-closed), attributes are quoted, '&' starts an entity,
// no '<' inside attribute values; <style> content is raw text. Comments and <!DOCTYPE> skipped.
#include <cctype>
#include <string>
#include <vector>

namespace mlab::test {

namespace detail {
inline bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == ':' || c == '_';
}

// An entity at text[i] == '&': "&name;", "&#123;" or "&#x1f;". Returns its length, 0 if none.
inline std::size_t entity_length(const std::string& text, std::size_t i) {
  std::size_t j = i + 1;
  if (j < text.size() && text[j] == '#') {
    ++j;
    const bool hex = j < text.size() && text[j] == 'x';
    if (hex) ++j;
    const std::size_t start = j;
    while (j < text.size() && (hex ? std::isxdigit(static_cast<unsigned char>(text[j])) != 0
                                   : std::isdigit(static_cast<unsigned char>(text[j])) != 0)) {
      ++j;
    }
    if (j == start) return 0;
  } else {
    const std::size_t start = j;
    while (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j])) != 0) ++j;
    if (j == start) return 0;
  }
  return j < text.size() && text[j] == ';' ? j + 1 - i : 0;
}
}  // namespace detail

// "" when `html` is well-formed, else the first problem with its byte offset.
inline std::string check_well_formed(const std::string& html) {
  std::vector<std::string> stack;
  std::size_t i = 0;
  const std::size_t n = html.size();
  const auto at = [&](std::size_t pos) { return " at offset " + std::to_string(pos); };
  int roots = 0;
  while (i < n) {
    const char c = html[i];
    if (c == '&') {
      if (detail::entity_length(html, i) == 0) return "bare '&'" + at(i);
      ++i;
      continue;
    }
    if (c != '<') {
      ++i;
      continue;
    }
    if (html.compare(i, 4, "<!--") == 0) {
      const auto end = html.find("-->", i + 4);
      if (end == std::string::npos) return "unterminated comment" + at(i);
      i = end + 3;
      continue;
    }
    if (html.compare(i, 9, "<!DOCTYPE") == 0) {
      const auto end = html.find('>', i);
      if (end == std::string::npos) return "unterminated doctype" + at(i);
      i = end + 1;
      continue;
    }
    const std::size_t tag_start = i;
    std::size_t j = i + 1;
    const bool closing = j < n && html[j] == '/';
    if (closing) ++j;
    std::size_t name_start = j;
    while (j < n && detail::is_name_char(html[j])) ++j;
    const std::string name = html.substr(name_start, j - name_start);
    if (name.empty()) return "'<' that starts no tag" + at(tag_start);
    bool self_closing = false;
    for (;;) {
      while (j < n && std::isspace(static_cast<unsigned char>(html[j])) != 0) ++j;
      if (j >= n) return "unterminated tag <" + name + at(tag_start);
      if (html[j] == '>') {
        ++j;
        break;
      }
      if (html[j] == '/' && j + 1 < n && html[j + 1] == '>' && !closing) {
        self_closing = true;
        j += 2;
        break;
      }
      if (closing) return "attributes in a closing tag </" + name + at(tag_start);
      const std::size_t attr_start = j;
      while (j < n && detail::is_name_char(html[j])) ++j;
      if (j == attr_start) return "bad attribute in <" + name + at(j);
      if (j >= n || html[j] != '=') return "attribute without a value in <" + name + at(j);
      ++j;
      if (j >= n || html[j] != '"') return "unquoted attribute in <" + name + at(j);
      const auto end = html.find('"', j + 1);
      if (end == std::string::npos) return "unterminated attribute in <" + name + at(j);
      for (std::size_t k = j + 1; k < end; ++k) {
        if (html[k] == '<') return "'<' in an attribute of <" + name + at(k);
        if (html[k] == '&' && detail::entity_length(html, k) == 0) {
          return "bare '&' in an attribute of <" + name + at(k);
        }
      }
      j = end + 1;
    }
    if (closing) {
      if (stack.empty()) return "</" + name + "> closes nothing" + at(tag_start);
      if (stack.back() != name) {
        return "</" + name + "> closes <" + stack.back() + ">" + at(tag_start);
      }
      stack.pop_back();
    } else if (!self_closing) {
      if (stack.empty()) ++roots;
      stack.push_back(name);
      if (name == "style") {  // raw text up to </style>
        const auto end = html.find("</style>", j);
        if (end == std::string::npos) return "unterminated <style>" + at(tag_start);
        j = end;
      }
    } else if (stack.empty()) {
      ++roots;
    }
    i = j;
  }
  if (!stack.empty()) return "<" + stack.back() + "> never closed";
  if (roots != 1) return std::to_string(roots) + " root elements";
  return "";
}

}  // namespace mlab::test
