// `full`: the dense K/V cache of the model as loaded (the baseline every method is measured
// against). It adds nothing to the recipe.
#include "methods/kv_method.hpp"

namespace mlab::methods {
namespace {

class FullMethod final : public KvMethod {
 public:
  std::string describe() const override { return "full"; }
  void configure(CacheRecipe&) const override {}
};

}  // namespace

std::unique_ptr<KvMethod> make_full_method(const MethodSpec&) {
  return std::make_unique<FullMethod>();
}

}  // namespace mlab::methods
