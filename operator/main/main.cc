// The poolkeeper binary: wires the command line to the process's streams, nothing more.
#include <iostream>

#include "main/commands.h"
#include "main/run.h"
#include "postgres/observer.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "run") {
    return poolkeeper::cli::RunOperator({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  poolkeeper::postgres::LibpqClient database;  // for check --observe
  return poolkeeper::cli::RunCli(args, std::cout, std::cerr, &database);
}
