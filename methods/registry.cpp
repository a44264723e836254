#include "methods/registry.hpp"

#include "core/error.hpp"

namespace mlab::methods {

// The factories the registry lines name (each defined in its method's folder).
#define MLAB_METHOD(key, doc, factory) std::unique_ptr<KvMethod> factory(const MethodSpec& spec);
#include "methods/methods.def"
#undef MLAB_METHOD

namespace {

struct Binding {
  const char* name;
  const char* doc;
  MethodFactory factory;
};

const std::vector<Binding>& bindings() {
  static const std::vector<Binding> list = {
#define MLAB_METHOD(key, doc, factory) Binding{#key, doc, &factory},
#include "methods/methods.def"
#undef MLAB_METHOD
  };
  return list;
}

}  // namespace

const std::vector<RegistryEntry>& method_entries() {
  static const std::vector<RegistryEntry> entries = [] {
    std::vector<RegistryEntry> list;
    for (const auto& b : bindings()) {
      const std::string options = method_options_help(b.name);
      list.push_back(
          RegistryEntry{b.name, std::string(b.doc) + (options.empty() ? "" : "; " + options), ""});
    }
    check_unique("method", list);
    return list;
  }();
  return entries;
}

const RegistryEntry& find_method(std::string_view name, bool allow_planned) {
  return find_entry("method", method_entries(), name, allow_planned);
}

std::unique_ptr<KvMethod> make_method(const MethodSpec& spec) {
  find_method(spec.name);  // throws for unknown names, with the closest match
  for (const auto& b : bindings()) {
    if (spec.name == b.name) return b.factory(spec);
  }
  MLAB_FAIL("method '", spec.name, "' has no factory");
}

}  // namespace mlab::methods
