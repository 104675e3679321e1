#include "main/run_flags.h"

#include <charconv>
#include <set>

namespace poolkeeper::cli {
namespace {

Result<int> PositiveInt(const std::string& flag, const std::string& value, int max) {
  int n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > max) {
    return Invalid(flag,
                   "want an integer from 1 to " + std::to_string(max) + ", got \"" + value + "\"");
  }
  return n;
}

Result<std::vector<std::string>> Namespaces(const std::string& value) {
  std::vector<std::string> namespaces;
  std::set<std::string> seen;
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    std::string name = value.substr(start, comma == std::string::npos ? comma : comma - start);
    bool valid = !name.empty() && name.size() <= 63 && std::isalnum(name.front()) &&
                 std::isalnum(name.back());
    for (char c : name) valid = valid && ((c >= 'a' && c <= 'z') || std::isdigit(c) || c == '-');
    if (!valid) return Invalid("--namespaces", "\"" + name + "\" is not a namespace name");
    if (seen.insert(name).second) namespaces.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return namespaces;
}

}  // namespace

Result<RunOptions> ParseRunFlags(const std::vector<std::string>& args) {
  RunOptions options;
  std::string default_image;
  std::string default_version;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    if (auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    auto take = [&]() -> Result<std::string> {
      if (has_value) return value;
      if (i + 1 >= args.size()) return Invalid(flag, "needs a value");
      return args[++i];
    };
    if (flag == "-h" || flag == "--help") {
      options.help = true;
      continue;
    }
    if (flag == "--leader-elect") {
      if (has_value && value != "true" && value != "false") {
        return Invalid(flag, "want true or false, got \"" + value + "\"");
      }
      options.leader_elect = !has_value || value == "true";
      continue;
    }
    auto v = take();
    if (!v) return std::unexpected(v.error());
    if (flag == "--kubeconfig") {
      options.kubeconfig = *v;
    } else if (flag == "--namespaces") {
      if (v->empty()) continue;
      auto namespaces = Namespaces(*v);
      if (!namespaces) return std::unexpected(namespaces.error());
      options.namespaces = std::move(*namespaces);
    } else if (flag == "--workers") {
      auto n = PositiveInt(flag, *v, 64);
      if (!n) return std::unexpected(n.error());
      options.workers = *n;
    } else if (flag == "--http-address" || flag == "--webhook-address") {
      // Port 0 asks the kernel for a free one (tests).
      auto colon = v->rfind(':');
      int port = -1;
      if (colon != std::string::npos && colon + 1 < v->size()) {
        auto [end, ec] = std::from_chars(v->data() + colon + 1, v->data() + v->size(), port);
        if (ec != std::errc() || end != v->data() + v->size()) port = -1;
      }
      if (port < 0 || port > 65535) return Invalid(flag, "want HOST:PORT, got \"" + *v + "\"");
      (flag == "--http-address" ? options.http_address : options.webhook_address) = *v;
    } else if (flag == "--webhook-cert-dir") {
      if (v->empty()) return Invalid(flag, "must not be empty");
      options.webhook_cert_dir = *v;
    } else if (flag == "--leader-election-namespace") {
      options.leader_election_namespace = *v;
    } else if (flag == "--leader-election-id") {
      if (v->empty()) return Invalid(flag, "must not be empty");
      options.leader_election_id = *v;
    } else if (flag == "--log-format") {
      if (*v != "text" && *v != "json")
        return Invalid(flag, "want text or json, got \"" + *v + "\"");
      options.log_format = *v == "json" ? LogFormat::kJson : LogFormat::kText;
    } else if (flag == "--log-level") {
      if (*v != "debug" && *v != "info" && *v != "warn" && *v != "error") {
        return Invalid(flag, "want debug, info, warn or error, got \"" + *v + "\"");
      }
      options.log_level = *v;
    } else if (flag == "--resync-seconds") {
      auto n = PositiveInt(flag, *v, 86400);
      if (!n) return std::unexpected(n.error());
      options.resync = std::chrono::seconds(*n);
    } else if (flag == "--shutdown-timeout-seconds") {
      auto n = PositiveInt(flag, *v, 3600);
      if (!n) return std::unexpected(n.error());
      options.shutdown_timeout = std::chrono::seconds(*n);
    } else if (flag == "--watch-timeout-seconds") {
      auto n = PositiveInt(flag, *v, 3600);
      if (!n) return std::unexpected(n.error());
      options.watch_timeout = std::chrono::seconds(*n);
    } else if (flag == "--default-pgbouncer-image") {
      default_image = *v;
    } else if (flag == "--default-pgbouncer-version") {
      default_version = *v;
    } else {
      return Invalid(flag, "unknown flag");
    }
  }
  auto defaults = api::MakeParseDefaults(default_image, default_version);
  if (!defaults) return std::unexpected(defaults.error());
  options.defaults = std::move(*defaults);
  return options;
}

}  // namespace poolkeeper::cli
