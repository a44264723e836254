#pragma once
// Typed access to tokenizer.json fields with errors that name the component and the field
// ("pre_tokenizer.Split: field 'behavior' must be a string, got number").
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mlab::tokenizer::json_access {

inline const nlohmann::json& field(const nlohmann::json& object, std::string_view key,
                                   std::string_view where) {
  MLAB_CHECK(object.is_object(), where, ": must be a JSON object, got ", object.type_name());
  const auto it = object.find(key);
  MLAB_CHECK(it != object.end(), where, ": missing field '", key, "'");
  return *it;
}

inline bool has(const nlohmann::json& object, std::string_view key) {
  return object.is_object() && object.contains(key) && !object.at(std::string(key)).is_null();
}

inline std::string get_string(const nlohmann::json& object, std::string_view key,
                              std::string_view where) {
  const auto& value = field(object, key, where);
  MLAB_CHECK(value.is_string(), where, ": field '", key, "' must be a string, got ",
             value.type_name());
  return value.get<std::string>();
}

inline bool get_bool(const nlohmann::json& object, std::string_view key, std::string_view where,
                     bool fallback) {
  if (!has(object, key)) return fallback;
  const auto& value = object.at(std::string(key));
  MLAB_CHECK(value.is_boolean(), where, ": field '", key, "' must be a boolean, got ",
             value.type_name());
  return value.get<bool>();
}

inline int64_t get_int(const nlohmann::json& object, std::string_view key, std::string_view where) {
  const auto& value = field(object, key, where);
  MLAB_CHECK(value.is_number_integer(), where, ": field '", key, "' must be an integer, got ",
             value.type_name());
  return value.get<int64_t>();
}

inline const nlohmann::json& get_array(const nlohmann::json& object, std::string_view key,
                                       std::string_view where) {
  const auto& value = field(object, key, where);
  MLAB_CHECK(value.is_array(), where, ": field '", key, "' must be an array, got ",
             value.type_name());
  return value;
}

// The "type" of a component object.
inline std::string type_of(const nlohmann::json& component, std::string_view where) {
  return get_string(component, "type", where);
}

}  // namespace mlab::tokenizer::json_access
