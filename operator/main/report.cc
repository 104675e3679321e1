#include "main/report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <set>

namespace poolkeeper::cli {

using nlohmann::json;

json PlanToJson(const budget::Plan& plan) {
  json servers = json::array();
  for (const auto& s : plan.servers) {
    servers.push_back({{"server", s.server},
                       {"maxConnections", s.max_connections},
                       {"reserved", s.reserved},
                       {"overhead", s.overhead},
                       {"usable", s.usable},
                       {"allocated", s.allocated},
                       {"headroom", s.headroom},
                       {"verdict", budget::VerdictName(s.verdict)}});
  }
  json pools = json::array();
  for (const auto& p : plan.pools) {
    json databases = json::array();
    for (const auto& d : p.databases) {
      databases.push_back(
          {{"name", d.name}, {"maxDbConnections", d.max_db_connections}, {"derived", d.derived}});
    }
    json findings = json::array();
    for (const auto& f : p.findings) {
      findings.push_back({{"severity", budget::SeverityName(f.severity)},
                          {"code", f.code},
                          {"message", f.message}});
    }
    pools.push_back({{"namespace", p.namespace_},
                     {"name", p.name},
                     {"server", p.server},
                     {"instances", p.instances},
                     {"maxSurge", p.max_surge},
                     {"perInstance", p.per_instance},
                     {"worstCase", p.worst_case},
                     {"allocated", p.allocated},
                     {"verdict", p.refused ? "Refused" : budget::VerdictName(p.verdict)},
                     {"databases", databases},
                     {"clientDemand", p.client_demand},
                     {"clientCapacity", p.client_capacity},
                     {"findings", findings}});
  }
  return {{"servers", servers}, {"pools", pools}};
}

namespace {

std::string_view PoolVerdict(const budget::PoolPlan& p) {
  return p.refused ? "Refused" : budget::VerdictName(p.verdict);
}

std::string PoolText(const budget::PoolPlan& p) {
  std::string out =
      fmt::format("  pool {}/{}: ({} instance{} + {} surge) x {} per instance = {}: {}\n",
                  p.namespace_, p.name, p.instances, p.instances == 1 ? "" : "s", p.max_surge,
                  p.per_instance, p.worst_case, PoolVerdict(p));
  // "derived": chosen by the planner because the spec set none; "lowered to fit" only when that
  // choice is below what the database could use.
  const bool lowered = std::ranges::any_of(
      p.findings, [](const budget::Finding& f) { return f.code == "DerivedCaps"; });
  for (const auto& d : p.databases) {
    if (d.max_db_connections == 0) continue;
    out += fmt::format("    database {}: max_db_connections {}{}\n", d.name, d.max_db_connections,
                       !d.derived ? ""
                       : lowered  ? " (derived: lowered to fit)"
                                  : " (derived: what it can use)");
  }
  if (p.client_demand > 0) {
    out += fmt::format("    clients: up to {} connections, capacity {}\n", p.client_demand,
                       p.client_capacity);
  }
  for (const auto& f : p.findings) {
    out += fmt::format("    {} {}: {}\n", budget::SeverityName(f.severity), f.code, f.message);
  }
  return out;
}

}  // namespace

std::string PlanToText(const budget::Plan& plan) {
  std::string out;
  std::set<std::string> servers;
  for (const auto& s : plan.servers) {
    servers.insert(s.server);
    out += fmt::format(
        "server {}: max_connections {} - reserved {} - overhead {} = {} usable; "
        "allocated {}, headroom {}: {}\n",
        s.server, s.max_connections, s.reserved, s.overhead, s.usable, s.allocated, s.headroom,
        budget::VerdictName(s.verdict));
    for (const auto& p : plan.pools) {
      if (p.server == s.server) out += PoolText(p);
    }
  }
  // Refused before any server could be planned for them (e.g. a serverRef naming nothing).
  for (const auto& p : plan.pools) {
    if (!servers.contains(p.server)) out += "not planned on " + p.server + ":\n" + PoolText(p);
  }
  return out;
}

}  // namespace poolkeeper::cli
