// The poolkeeper binary: wires the command line to the process's streams, nothing more.
#include <iostream>

#include "main/commands.h"
#include "postgres/observer.h"

int main(int argc, char** argv) {
  poolkeeper::postgres::LibpqClient database;  // for check --observe
  return poolkeeper::cli::RunCli({argv + 1, argv + argc}, std::cout, std::cerr, &database);
}
