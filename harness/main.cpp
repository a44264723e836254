// mla-bench: the one program of MLA-Bench (DESIGN.md §1).
#include <iostream>

#include "harness/cli.hpp"

int main(int argc, char** argv) { return mlab::harness::run_cli(argc, argv, std::cout, std::cerr); }
