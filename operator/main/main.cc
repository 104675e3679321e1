// The poolkeeper binary: wires the command line to the process's streams, nothing more.
#include <iostream>

#include "main/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return poolkeeper::cli::RunCli(args, std::cout, std::cerr);
}
