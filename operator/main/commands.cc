#include "main/commands.h"

#include <algorithm>
#include <map>
#include <optional>

#include "api/manifests.h"
#include "api/yaml.h"
#include "budget/planner.h"
#include "budget/servers.h"
#include "common/clock.h"
#include "common/files.h"
#include "main/observe.h"
#include "main/report.h"
#include "render/render.h"

namespace poolkeeper::cli {
namespace {

constexpr char kUsage[] =
    R"(poolkeeper: runs PgBouncer poolers for PostgreSQL inside the server's connection budget.

Usage:
  poolkeeper check -f FILE [-f FILE...] [--output text|json] [--observe]
  poolkeeper render -f FILE [-f FILE...] [--output-dir DIR]
  poolkeeper version

Run 'poolkeeper COMMAND --help' for a command's details.
)";

constexpr char kCheckUsage[] =
    R"(Usage: poolkeeper check -f FILE [-f FILE...] [--output text|json] [--observe]

Plans the connection budget of every ConnectionPool in the files (multi-document YAML; PostgresServers,
Secrets and other kinds may be in them) and prints the arithmetic per server and per pool. Pools
that name the same server (host:port, or a PostgresServer and its aliases) share its budget, in
file order.

  -f, --filename FILE   a manifest file (repeatable); '-' reads standard input
  -o, --output FORMAT   text (default) or json
  --observe             connect to each PostgresServer in the files and plan on what it reports
                        (credentials: its credentialsSecretRef Secret in the files, else PGUSER
                        and PGPASSWORD; CA: its caSecretRef Secret, else PGSSLROOTCERT)

Exit status: 0 every pool within budget (warnings may be printed), 1 a pool or server over budget
(or another error finding such as ClientCapacityExceeded), 2 invalid input.
)";

constexpr char kRenderUsage[] = R"(Usage: poolkeeper render -f FILE [-f FILE...] [--output-dir DIR]

Prints what the operator would apply for every ConnectionPool in the files: ConfigMap (pgbouncer.ini),
Secret (userlist), Deployment, Service and PodDisruptionBudget, as YAML documents. The users'
passwords are read from Secrets in the same files. A pool over budget under policy Enforce is not
rendered (the operator would not roll it out) and makes the command fail.

  -f, --filename FILE   a manifest file (repeatable); '-' reads standard input
  --output-dir DIR      write DIR/<namespace>/<name>/{pgbouncer.ini,userlist.txt,objects.yaml}
                        instead of printing; nothing is written unless every pool renders

Exit status: 0 rendered, 1 a pool over budget, 2 invalid input or a missing password.
)";

struct Flags {
  std::vector<std::string> files;
  std::string output = "text";
  std::string output_dir;
  bool observe = false;
  bool help = false;
};

std::optional<Flags> ParseFlags(const std::vector<std::string>& args, std::ostream& err) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](std::string_view name) -> std::optional<std::string> {
      if (auto eq = arg.find('='); eq != std::string::npos) return arg.substr(eq + 1);
      if (i + 1 >= args.size()) {
        err << "error: " << name << " needs a value\n";
        return std::nullopt;
      }
      return args[++i];
    };
    auto is = [&](std::string_view a, std::string_view b = "") {
      std::string_view head = std::string_view(arg).substr(0, arg.find('='));
      return head == a || (!b.empty() && head == b);
    };
    if (arg == "-h" || arg == "--help") {
      flags.help = true;
    } else if (arg == "--observe") {
      flags.observe = true;
    } else if (is("-f", "--filename")) {
      auto v = value("--filename");
      if (!v) return std::nullopt;
      flags.files.push_back(*v);
    } else if (is("-o", "--output")) {
      auto v = value("--output");
      if (!v) return std::nullopt;
      flags.output = *v;
    } else if (is("--output-dir")) {
      auto v = value("--output-dir");
      if (!v) return std::nullopt;
      flags.output_dir = *v;
    } else {
      err << "error: unknown argument \"" << arg << "\"\n";
      return std::nullopt;
    }
  }
  return flags;
}

Result<api::Manifests> Load(const std::vector<std::string>& files) {
  std::vector<std::pair<std::string, std::string>> sources;
  for (const auto& file : files) {
    auto text = file == "-" ? ReadFile("/dev/stdin") : ReadFile(file);
    if (!text) return std::unexpected(text.error());
    sources.emplace_back(file == "-" ? "<stdin>" : file, std::move(*text));
  }
  return api::LoadManifests(sources);
}

void PrintError(const Error& error, std::ostream& err) {
  if (error.fields.empty()) {
    err << "error: " << error.message << "\n";
    return;
  }
  for (const auto& issue : error.fields)
    err << "error: " << issue.field << ": " << issue.message << "\n";
}

// Loads and plans; prints problems and returns the exit code on failure.
std::expected<std::pair<api::Manifests, budget::Plan>, int> LoadAndPlan(
    const Flags& flags, postgres::ServerClient* database, std::ostream& out, std::ostream& err) {
  if (flags.files.empty()) {
    err << "error: no input: give at least one -f FILE\n";
    return std::unexpected(kExitInvalid);
  }
  auto manifests = Load(flags.files);
  if (!manifests) {
    PrintError(manifests.error(), err);
    return std::unexpected(kExitInvalid);
  }
  if (manifests->pools.empty()) {
    err << "error: no ConnectionPool (apiVersion " << api::kApiVersion << ") in the input\n";
    return std::unexpected(kExitInvalid);
  }
  if (flags.observe) {
    if (!database) {
      err << "error: --observe: no database client here\n";
      return std::unexpected(kExitInvalid);
    }
    ObserveEnv env{*database,
                   [](const char* name) -> std::optional<std::string> {
                     const char* value = std::getenv(name);
                     return value ? std::optional<std::string>(value) : std::nullopt;
                   },
                   Rfc3339Now()};
    // In JSON mode stdout is the plan alone.
    if (Status seen = ObserveServers(*manifests, env, flags.output == "json" ? err : out); !seen) {
      PrintError(seen.error(), err);
      return std::unexpected(kExitInvalid);
    }
  }
  budget::Plan plan =
      budget::PlanOnServers(manifests->pools, budget::ServerDirectory(manifests->servers));
  return std::make_pair(std::move(*manifests), std::move(plan));
}

// Over budget is exit 1 whatever the policy: Warn rolls the pool out anyway, which is exactly the
// overrun a pipeline running `check` wants to stop.
bool OverBudget(const budget::Plan& plan) {
  auto exceeded = [](const auto& item) { return item.verdict == budget::Verdict::kBudgetExceeded; };
  return plan.AnyError() || std::ranges::any_of(plan.pools, exceeded) ||
         std::ranges::any_of(plan.servers, exceeded);
}

int Check(const Flags& flags, postgres::ServerClient* database, std::ostream& out,
          std::ostream& err) {
  if (flags.output != "text" && flags.output != "json") {
    err << "error: --output must be text or json, not \"" << flags.output << "\"\n";
    return kExitInvalid;
  }
  auto planned = LoadAndPlan(flags, database, out, err);
  if (!planned) return planned.error();
  const budget::Plan& plan = planned->second;
  if (flags.output == "json") {
    out << PlanToJson(plan).dump(2) << "\n";
  } else {
    out << PlanToText(plan);
  }
  return OverBudget(plan) ? kExitOverBudget : kExitOk;
}

struct RenderedPool {
  std::string dir;
  std::string ini;
  std::string userlist;
  std::string objects_yaml;
};

int Render(const Flags& flags, std::ostream& out, std::ostream& err) {
  if (flags.observe) {
    err << "error: --observe is a flag of check\n";
    return kExitInvalid;
  }
  auto planned = LoadAndPlan(flags, nullptr, out, err);
  if (!planned) return planned.error();
  const auto& [manifests, plan] = *planned;
  std::vector<RenderedPool> rendered;
  int status = kExitOk;
  const budget::ServerDirectory directory(manifests.servers);
  for (size_t i = 0; i < manifests.pools.size(); ++i) {
    // Rendered as placed: a pool on a PostgresServer connects to the server's endpoint.
    const api::ConnectionPool pool = directory.Place(manifests.pools[i]).pool;
    const budget::PoolPlan& pool_plan = plan.pools[i];
    std::string id = pool.metadata.namespace_ + "/" + pool.metadata.name;
    if (pool_plan.refused) {
      err << "error: " << id << ": not rendered: " << pool_plan.findings.back().message << "\n";
      status = std::max(status, kExitOverBudget);
      continue;
    }
    if (pool_plan.verdict == budget::Verdict::kBudgetExceeded &&
        pool.spec.budget_policy == api::BudgetPolicy::kEnforce) {
      err << "error: " << id << ": over budget under policy Enforce, not rendered";
      for (const auto& f : pool_plan.findings) {
        if (f.code == "BudgetExceeded") err << ": " << f.message;
      }
      err << "\n";
      status = std::max(status, kExitOverBudget);
      continue;
    }
    auto passwords = api::ResolvePasswords(pool, manifests.secrets);
    if (!passwords) {
      err << "error: " << id << ": ";
      PrintError(passwords.error(), err);
      status = kExitInvalid;
      continue;
    }
    auto objects = render::BuildObjects(pool, pool_plan, passwords->passwords, passwords->revision);
    auto userlist = render::RenderUserlist(pool, passwords->passwords);
    if (!objects || !userlist) {
      err << "error: " << id << ": ";
      PrintError(objects ? userlist.error() : objects.error(), err);
      status = kExitInvalid;
      continue;
    }
    std::string yaml;
    for (const auto& kind : render::kOwnedKinds) {
      const nlohmann::json& object = (*objects).*kind.member;
      if (!object.is_null()) yaml += "---\n" + api::ToYaml(object);
    }
    // The pods the operator starts in a steady state (it creates them itself, one per slot).
    for (int slot = 0; slot < pool.spec.pooler.instances; ++slot) {
      yaml +=
          "---\n" + api::ToYaml(render::PodInSlot(objects->pod_template, pool.metadata.name, slot));
    }
    rendered.push_back(
        {flags.output_dir + "/" + pool.metadata.namespace_ + "/" + pool.metadata.name,
         render::RenderIni(pool, pool_plan), std::move(*userlist), std::move(yaml)});
  }
  if (status != kExitOk) return status;
  if (flags.output_dir.empty()) {
    for (const auto& pool : rendered) out << pool.objects_yaml;
    return kExitOk;
  }
  for (const auto& pool : rendered) {
    Status written = MakeDirectories(pool.dir);
    if (written) written = WriteFileAtomically(pool.dir + "/pgbouncer.ini", pool.ini);
    if (written) written = WriteFileAtomically(pool.dir + "/userlist.txt", pool.userlist, 0600);
    if (written) written = WriteFileAtomically(pool.dir + "/objects.yaml", pool.objects_yaml, 0600);
    if (!written) {
      PrintError(written.error(), err);
      return kExitInvalid;
    }
    out << "wrote " << pool.dir << "/{pgbouncer.ini,userlist.txt,objects.yaml}\n";
  }
  return kExitOk;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           postgres::ServerClient* database) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    (args.empty() ? err : out) << kUsage;
    return args.empty() ? kExitInvalid : kExitOk;
  }
  const std::string& command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "version" || command == "--version") {
    out << "poolkeeper " << POOLKEEPER_VERSION << "\n";
    return kExitOk;
  }
  if (command != "check" && command != "render") {
    err << "error: unknown command \"" << command << "\"\n" << kUsage;
    return kExitInvalid;
  }
  const char* usage = command == "check" ? kCheckUsage : kRenderUsage;
  auto flags = ParseFlags(rest, err);
  if (!flags) {
    err << usage;
    return kExitInvalid;
  }
  if (flags->help) {
    out << usage;
    return kExitOk;
  }
  return command == "check" ? Check(*flags, database, out, err) : Render(*flags, out, err);
}

}  // namespace poolkeeper::cli
