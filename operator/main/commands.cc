#include "main/commands.h"

#include <algorithm>
#include <map>
#include <optional>

#include "budget/planner.h"
#include "budget/servers.h"
#include "common/clock.h"
#include "common/files.h"
#include "main/agent_command.h"
#include "main/command_line.h"
#include "main/observe.h"
#include "main/policy_flags.h"
#include "main/report.h"
#include "main/run.h"
#include "main/run_flags.h"
#include "manifests/manifests.h"
#include "render/render.h"
#include "yaml/yaml.h"

namespace poolkeeper::cli {
namespace {

constexpr char kDescription[] =
    "poolkeeper: runs PgBouncer poolers for PostgreSQL inside the server's connection budget.";

constexpr char kCheckDescription[] =
    R"(Plans the connection budget of every ConnectionPool in the files and prints the arithmetic.

The files are multi-document YAML; PostgresServers, Secrets and other kinds may be in them. The
arithmetic is printed per server and per pool. Pools that name the same server (host:port, or a
PostgresServer and its aliases) share its budget, in file order.)";

constexpr char kCheckFooter[] =
    R"(With any of the pod policy flags, a pool the operator's pod policy would refuse is reported and
left out of the plan (unset policy flags take the operator's defaults).

Exit status: 0 every pool within budget (warnings may be printed), 1 a pool or server over budget
(or another error finding such as ClientCapacityExceeded, or a pool the pod policy refuses), 2
invalid input.)";

constexpr char kRenderDescription[] =
    R"(Prints what the operator would apply for every ConnectionPool in the files.

That is the ConfigMap (pgbouncer.ini), Secret (userlist), pods, Service and PodDisruptionBudget, as
YAML documents. The users' passwords are read from Secrets in the same files. A pool over budget
under policy Enforce is not rendered (the operator would not roll it out) and makes the command
fail.)";

constexpr char kRenderFooter[] =
    "With any of the pod policy flags, a pool the operator's pod policy would refuse is not\n"
    "rendered.\n\n"
    "Exit status: 0 rendered, 1 a pool over budget or refused by the pod policy, 2 invalid input\n"
    "or a missing password.";

constexpr char kFilenameHelp[] = "a manifest file (required, repeatable); '-' reads standard input";

struct Flags {
  std::vector<std::string> files;
  std::string output = "text";
  std::string output_dir;
  bool observe = false;
  PodPolicyFlags policy;
};

struct Planned {
  manifests::Manifests manifests;
  budget::Plan plan;
  bool policy_refused = false;  // a pool was left out: the command fails (exit 1)
};

void AddFilenames(CLI::App& command, Flags& flags) {
  command.add_option("-f,--filename", flags.files, kFilenameHelp)
      ->option_text("FILE")
      ->required()
      ->allow_extra_args(false)  // one file per -f: `-f a b` is not two files
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

Result<manifests::Manifests> Load(const std::vector<std::string>& files) {
  std::vector<std::pair<std::string, std::string>> sources;
  for (const auto& file : files) {
    auto text = file == "-" ? ReadFile("/dev/stdin") : ReadFile(file);
    if (!text) return std::unexpected(text.error());
    sources.emplace_back(file == "-" ? "<stdin>" : file, std::move(*text));
  }
  return manifests::LoadManifests(sources);
}

void PrintError(const Error& error, std::ostream& err) {
  if (error.fields.empty()) {
    err << "error: " << error.message << "\n";
    return;
  }
  for (const auto& issue : error.fields)
    err << "error: " << issue.field << ": " << issue.message << "\n";
}

// With the pod policy flags, leaves out (as the operator does) every pool the policy refuses, each
// finding printed with its field; true when one was.
std::expected<bool, int> ApplyPodPolicy(const Flags& flags, manifests::Manifests& manifests,
                                        std::ostream& err) {
  if (!flags.policy.Given()) return false;
  auto policy = flags.policy.Policy(api::ParseDefaults{});
  if (!policy) {
    PrintError(policy.error(), err);
    return std::unexpected(kExitInvalid);
  }
  std::vector<api::ConnectionPool> allowed;
  for (auto& pool : manifests.pools) {
    auto issues = api::CheckPodPolicy(*policy, pool);
    for (const auto& issue : issues) {
      err << "error: " << pool.metadata.namespace_ << "/" << pool.metadata.name
          << ": refused by the pod policy: " << issue.field << ": " << issue.message << "\n";
    }
    if (issues.empty()) allowed.push_back(std::move(pool));
  }
  const bool refused = allowed.size() != manifests.pools.size();
  manifests.pools = std::move(allowed);
  return refused;
}

// Loads and plans; prints problems and returns the exit code on failure.
std::expected<Planned, int> LoadAndPlan(const Flags& flags, postgres::ServerClient* database,
                                        std::ostream& out, std::ostream& err) {
  auto manifests = Load(flags.files);
  if (!manifests) {
    PrintError(manifests.error(), err);
    return std::unexpected(kExitInvalid);
  }
  if (manifests->pools.empty()) {
    err << "error: no ConnectionPool (apiVersion " << api::kApiVersion << ") in the input\n";
    return std::unexpected(kExitInvalid);
  }
  auto refused = ApplyPodPolicy(flags, *manifests, err);
  if (!refused) return std::unexpected(refused.error());
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
  return Planned{std::move(*manifests), std::move(plan), *refused};
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
  auto planned = LoadAndPlan(flags, database, out, err);
  if (!planned) return planned.error();
  const budget::Plan& plan = planned->plan;
  if (flags.output == "json") {
    out << PlanToJson(plan).dump(2) << "\n";
  } else {
    out << PlanToText(plan);
  }
  return OverBudget(plan) || planned->policy_refused ? kExitOverBudget : kExitOk;
}

struct RenderedPool {
  std::string dir;
  std::string ini;
  std::string userlist;
  std::string objects_yaml;
};

// The PostgresServer's CA for a pool that verifies its server with it: from the files when they
// hold its caSecretRef Secret; else, offline, a note saying where the operator will copy it from.
std::string ServerCaOffline(const api::ConnectionPool& pool,
                            const budget::ServerDirectory& directory,
                            const secrets::SecretSource& files) {
  if (!pool.spec.tls.server || !pool.spec.tls.server->ca_from_server) return {};
  const api::PostgresServer* server = directory.Find(pool.spec.server_ref);
  if (!server || !server->spec.ca_secret_ref) return {};
  const api::NamespacedSecretRef& ref = *server->spec.ca_secret_ref;
  auto ca = secrets::ResolveServerCa(server->name, ref.namespace_, ref.name, files);
  if (ca) return *ca;
  return "# copied by the operator from Secret " + ref.namespace_ + "/" + ref.name +
         ", key ca.crt\n";
}

int Render(const Flags& flags, std::ostream& out, std::ostream& err) {
  auto planned = LoadAndPlan(flags, nullptr, out, err);
  if (!planned) return planned.error();
  const auto& [manifests, plan, policy_refused] = *planned;
  std::vector<RenderedPool> rendered;
  int status = policy_refused ? kExitOverBudget : kExitOk;
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
    auto passwords = secrets::ResolvePasswords(pool, manifests.secrets);
    if (!passwords) {
      err << "error: " << id << ": ";
      PrintError(passwords.error(), err);
      status = kExitInvalid;
      continue;
    }
    if (pool.spec.auth_mode == api::AuthMode::kAuthQuery) {
      // The auth user's password exists only once the operator has set the lookup up on the
      // server; offline, the userlist shows where it will come from.
      passwords->passwords[api::kAuthUser] = "(generated by the operator on the PostgresServer)";
    }
    auto tls = secrets::ResolveTls(pool, manifests.secrets);
    if (!tls) {
      err << "error: " << id << ": ";
      PrintError(tls.error(), err);
      status = kExitInvalid;
      continue;
    }
    auto objects = render::BuildObjects(pool, pool_plan, passwords->passwords,
                                        secrets::WithTlsRevision(passwords->revision, *tls),
                                        ServerCaOffline(pool, directory, manifests.secrets));
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
      if (!object.is_null()) yaml += "---\n" + yaml::ToYaml(object);
    }
    // The pods the operator starts in a steady state (it creates them itself, one per slot).
    for (int slot = 0; slot < pool.spec.pooler.instances; ++slot) {
      yaml += "---\n" +
              yaml::ToYaml(render::PodInSlot(objects->pod_template, pool.metadata.name, slot));
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
  CLI::App app{kDescription, "poolkeeper"};
  app.formatter(HelpLayout());
  app.footer("Run 'poolkeeper COMMAND --help' for a command's details.");
  app.require_subcommand(0, 1);  // `check -f a render` is a stray argument, not two commands
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  bool version_flag = false;
  app.add_flag("--version", version_flag, "print the version and exit");

  Flags flags;
  CLI::App* check = app.add_subcommand("check", kCheckDescription);
  check->footer(kCheckFooter);
  AddFilenames(*check, flags);
  flags.policy.Add(*check);
  check->add_option("-o,--output", flags.output, "text (default) or json")
      ->option_text("FORMAT")
      ->check(OneOf({"text", "json"}));
  check->add_flag("--observe", flags.observe,
                  "connect to each PostgresServer in the files and plan on what it reports\n"
                  "(credentials: its credentialsSecretRef Secret in the files, else PGUSER\n"
                  "and PGPASSWORD; CA: its caSecretRef Secret, else PGSSLROOTCERT)");

  CLI::App* render = app.add_subcommand("render", kRenderDescription);
  render->footer(kRenderFooter);
  AddFilenames(*render, flags);
  flags.policy.Add(*render);
  render
      ->add_option("--output-dir", flags.output_dir,
                   "write DIR/<namespace>/<name>/{pgbouncer.ini,userlist.txt,objects.yaml}\n"
                   "instead of printing; nothing is written unless every pool renders")
      ->option_text("DIR");

  CLI::App* run = app.add_subcommand("run");
  auto run_options = AddRunFlags(*run);
  AgentFlags agent_flags;
  CLI::App* agent = app.add_subcommand("agent", "Runs the pooler agent beside PgBouncer.");
  AddAgentFlags(*agent, agent_flags);
  CLI::App* version = app.add_subcommand("version", "Prints the version.");
  version->footer("");
  CLI::App* help = app.add_subcommand("help", "Prints this help.")->group("");  // as --help

  auto parsed = ParseArgs(app, args);
  if (!parsed) {
    const CLI::App* command = app.get_subcommands().empty() ? &app : app.get_subcommands().front();
    err << "error: " << parsed.error().ToString() << "\n\n" << HelpOf(*command);
    return kExitInvalid;
  }
  if (parsed->help || parsed->command == help) {
    out << HelpOf(parsed->command == help ? app : *parsed->command);
    return kExitOk;
  }
  if (parsed->command == version || version_flag) {
    out << "poolkeeper " << POOLKEEPER_VERSION << "\n";
    return kExitOk;
  }
  if (parsed->command == check) return Check(flags, database, out, err);
  if (parsed->command == render) return Render(flags, out, err);
  if (parsed->command == agent) return RunAgent(agent_flags);
  if (parsed->command == run) {
    auto options = run_options();
    if (!options) {
      err << "error: " << options.error().ToString() << "\n\n" << HelpOf(*run);
      return kExitInvalid;
    }
    return RunOperator(*options);
  }
  err << HelpOf(app);  // no command
  return kExitInvalid;
}

}  // namespace poolkeeper::cli
