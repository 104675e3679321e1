#include "main/command_line.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

namespace poolkeeper::cli {
namespace {

// ParseArgs reports what nothing declared itself, as an error naming it, instead of CLI11's
// ExtrasError whose message lists the arguments in one sentence.
void AllowExtras(CLI::App& app) {
  app.allow_extras();
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) AllowExtras(*sub);
}

bool TakesValue(const CLI::App& app, const std::string& name) {
  if (const CLI::Option* option = app.get_option_no_throw(name)) {
    if (option->get_type_size() != 0) return true;
  }
  return std::ranges::any_of(app.get_subcommands([](const CLI::App*) { return true; }),
                             [&](const CLI::App* sub) { return TakesValue(*sub, name); });
}

// CLI11 2.1 reads `--name=` as `--name` with the next argument for its value; an empty value is
// meant (`--namespaces=`, all of them), so it is passed as one.
std::vector<std::string> EmptyValuesExplicit(const CLI::App& app,
                                             const std::vector<std::string>& args) {
  std::vector<std::string> out;
  bool options_ended = false;  // after "--", arguments are taken as they are
  for (const std::string& arg : args) {
    options_ended = options_ended || arg == "--";
    if (!options_ended && arg.starts_with("--") && arg.find('=') + 1 == arg.size() &&
        TakesValue(app, arg.substr(0, arg.size() - 1))) {
      out.push_back(arg.substr(0, arg.size() - 1));
      out.emplace_back();
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

CLI::App* Innermost(CLI::App& app) {
  CLI::App* command = &app;
  while (!command->get_subcommands().empty()) command = command->get_subcommands().front();
  return command;
}

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }

// CLI11 names the option in its messages by its long name, in several phrasings ("--workers: ...",
// "Could not convert: --leader-elect = maybe", "--filename is required"); the flag is found there
// among the options the failing command (or a parent) declares.
Error FlagError(const CLI::Error& e, const CLI::App& command) {
  const std::string what = e.what();
  for (const CLI::App* at = &command; at != nullptr; at = at->get_parent()) {
    for (const CLI::Option* option : at->get_options()) {
      const std::string name = option->get_name();
      for (size_t pos = what.find(name); pos != std::string::npos; pos = what.find(name, pos + 1)) {
        size_t end = pos + name.size();
        if (end < what.size() && IsNameChar(what[end]))
          continue;  // --leader-elect in --leader-election-id
        std::string message = what;
        if (dynamic_cast<const CLI::ArgumentMismatch*>(&e)) {
          message = "needs a value";
        } else if (dynamic_cast<const CLI::RequiredError*>(&e)) {
          message = "must be given";
        } else if (what.starts_with(name + ": ")) {
          message = what.substr(name.size() + 2);
        }
        return Invalid(name, std::move(message)).error();
      }
    }
  }
  return Invalid(command.get_name(), what).error();
}

class Layout : public CLI::Formatter {
 public:
  Layout() { column_width(36); }

  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    return make_usage(app, std::move(name)) + "\n" + app->get_description() + "\n" +
           make_positionals(app) + make_groups(app, mode) + make_subcommands(app, mode) + "\n" +
           make_footer(app);
  }

  std::string make_subcommand(const CLI::App* sub) const override {
    std::ostringstream out;
    const std::string& description = sub->get_description();
    CLI::detail::format_help(out, sub->get_display_name(true),
                             description.substr(0, description.find('\n')), column_width_);
    return out.str();
  }
};

}  // namespace

Result<Parsed> ParseArgs(CLI::App& app, const std::vector<std::string>& args) {
  AllowExtras(app);
  std::vector<std::string> explicit_args = EmptyValuesExplicit(app, args);
  std::vector<std::string> last_first(explicit_args.rbegin(),
                                      explicit_args.rend());  // CLI11's order
  try {
    app.parse(last_first);
  } catch (const CLI::CallForHelp&) {
    return Parsed{Innermost(app), true};
  } catch (const CLI::Error& e) {
    return std::unexpected(FlagError(e, *Innermost(app)));
  }
  for (const CLI::App* command = &app;; command = command->get_subcommands().front()) {
    if (auto extra = command->remaining(); !extra.empty()) {
      const std::string& arg = extra.front();
      return Invalid(arg, arg.starts_with('-') ? "unknown flag"
                          : command == &app    ? "unknown command"
                                               : "unexpected argument");
    }
    if (command->get_subcommands().empty()) return Parsed{command, false};
  }
}

CLI::Validator OneOf(std::vector<std::string> values) {
  std::string wanted;  // "text or json", "debug, info, warn or error"
  for (size_t i = 0; i < values.size(); ++i) {
    wanted += (i == 0 ? "" : i + 1 == values.size() ? " or " : ", ") + values[i];
  }
  return CLI::Validator(
      [values = std::move(values), wanted](std::string& value) -> std::string {
        if (std::ranges::find(values, value) != values.end()) return "";
        return "want " + wanted + ", got \"" + value + "\"";
      },
      "");
}

CLI::Validator NotEmpty() {
  return CLI::Validator(
      [](std::string& value) -> std::string { return value.empty() ? "must not be empty" : ""; },
      "");
}

CLI::Validator HostPort() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        auto colon = value.rfind(':');
        int port = -1;
        if (colon != std::string::npos && colon + 1 < value.size()) {
          const char* end = value.data() + value.size();
          auto [at, ec] = std::from_chars(value.data() + colon + 1, end, port);
          if (ec != std::errc() || at != end) port = -1;
        }
        if (port < 0 || port > 65535) return "want HOST:PORT, got \"" + value + "\"";
        return "";
      },
      "");
}

CLI::Validator IntegerIn(int min, int max) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        int n = 0;
        const char* end = value.data() + value.size();
        auto [at, ec] = std::from_chars(value.data(), end, n);
        if (ec != std::errc() || at != end || n < min || n > max) {
          return "want an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                 ", got \"" + value + "\"";
        }
        value = std::to_string(n);
        return "";
      },
      "");
}

std::string HelpOf(const CLI::App& command) {
  std::string name = command.get_name();
  for (const CLI::App* parent = command.get_parent(); parent; parent = parent->get_parent()) {
    name = parent->get_name() + " " + name;
  }
  return command.get_formatter()->make_help(&command, name, CLI::AppFormatMode::Normal);
}

std::shared_ptr<CLI::Formatter> HelpLayout() { return std::make_shared<Layout>(); }

}  // namespace poolkeeper::cli
