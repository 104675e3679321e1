// What every command of the `poolkeeper` command line shares on top of CLI11: parsing that returns
// a Result instead of throwing (CLI11's exceptions stop here), errors that name the flag at fault,
// validators whose messages say what was wanted and what was given, and the help layout.
// Internal to operator/main: only its .cc files see CLI11.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace poolkeeper::cli {

// Where a successful parse ended: the innermost command chosen (the app itself when none was),
// and whether that command was asked for its help instead of a run.
struct Parsed {
  const CLI::App* command = nullptr;
  bool help = false;
};

// args excludes the program name. A bad flag is an Invalid error whose one field is the flag's
// long name; an argument nothing declares is one too (field: the argument), so every command
// reports usage errors alike.
Result<Parsed> ParseArgs(CLI::App& app, const std::vector<std::string>& args);

// For Option::check.
CLI::Validator OneOf(std::vector<std::string> values);
CLI::Validator NotEmpty();
// HOST:PORT with a port from 0 (the kernel picks one; tests) to 65535.
CLI::Validator HostPort();
// For Option::transform: decimal only, and normalised, so that CLI11's own conversion (which
// reads "010" as octal) sees the number that was checked.
CLI::Validator IntegerIn(int min, int max);

// The help of command itself, "Usage: poolkeeper check ..." (CLI::App::help would show that of
// the subcommand chosen instead, and name a subcommand without its parents).
std::string HelpOf(const CLI::App& command);

// Usage first, then the description, options, commands and footer; the list of commands shows
// the first line of each one's description.
std::shared_ptr<CLI::Formatter> HelpLayout();

}  // namespace poolkeeper::cli
