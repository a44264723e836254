#include "tests/support/catch_torch.hpp"
