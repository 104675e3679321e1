#include "controller/admission.h"

#include "controller/object_key.h"
#include "controller/reconciler.h"

namespace poolkeeper::controller {

using nlohmann::json;

namespace {

std::string Denial(const api::ConnectionPool& pool, const std::vector<FieldIssue>& issues) {
  return "ConnectionPool " + ObjectKey(pool.metadata.namespace_, pool.metadata.name) +
         " refused by the operator's pod policy: " + api::DescribeIssues(issues);
}

}  // namespace

std::optional<std::string> PolicyDenial(const json& object, const api::ParseDefaults& defaults,
                                        const api::PodPolicy& policy) {
  auto parsed = api::ParseConnectionPool(object, defaults);
  if (!parsed) return std::nullopt;
  auto issues = api::CheckPodPolicy(policy, *parsed);
  if (issues.empty()) return std::nullopt;
  return Denial(*parsed, issues);
}

std::optional<std::string> AdmitPool(
    const json& object, const api::ParseDefaults& defaults, const api::PodPolicy& policy,
    const budget::ServerDirectory& directory,
    const std::function<AdmissionInputs(const api::ConnectionPool& candidate)>& gather) {
  auto parsed = api::ParseConnectionPool(object, defaults);
  if (!parsed) return parsed.error().ToString();
  api::ConnectionPool candidate = std::move(*parsed);
  if (auto issues = api::CheckPodPolicy(policy, candidate); !issues.empty()) {
    return Denial(candidate, issues);
  }
  // A pool being created may not carry its timestamp yet: it is the newest in the ledger.
  if (candidate.metadata.creation_timestamp.empty()) {
    candidate.metadata.creation_timestamp = "9999-12-31T23:59:59Z";
  }
  AdmissionInputs in = gather(candidate);
  std::vector<budget::SharedPool> pools = std::move(in.others);
  pools.push_back(std::make_shared<const api::ConnectionPool>(candidate));
  SortLedger(pools);
  const budget::Plan plan = budget::PlanOnServers(pools, directory, in.holdings);
  const std::string id = ObjectKey(candidate.metadata.namespace_, candidate.metadata.name);
  for (const auto& p : plan.pools) {
    if (p.namespace_ != candidate.metadata.namespace_ || p.name != candidate.metadata.name)
      continue;
    if (p.refused) {
      return "ConnectionPool " + id + " refused (" + p.findings.back().code +
             "): " + p.findings.back().message;
    }
    const api::BudgetPolicy policy = directory.Place(candidate).pool.spec.budget_policy;
    if (p.verdict != budget::Verdict::kBudgetExceeded || policy != api::BudgetPolicy::kEnforce) {
      return std::nullopt;
    }
    for (const auto& f : p.findings) {
      if (f.code == "BudgetExceeded") {
        return "ConnectionPool " + id + " does not fit its server (" + p.server + "): " + f.message;
      }
    }
  }
  return std::nullopt;
}

json Review(const std::string& body,
            const std::function<std::optional<std::string>(const json&)>& admit) {
  json review = json::parse(body, nullptr, false);
  if (!review.is_object() || !review.contains("request") || !review["request"].is_object()) {
    return {{"error", "not an AdmissionReview"}};
  }
  const json& request = review["request"];
  json response = {{"uid", request.value("uid", "")}, {"allowed", true}};
  const json object = request.value("object", json());
  const json old = request.value("oldObject", json());
  const bool unchanged_spec = old.is_object() && object.is_object() &&
                              old.value("spec", json()) == object.value("spec", json());
  const bool deleting = object.is_object() && object.contains("metadata") &&
                        object["metadata"].is_object() &&
                        object["metadata"].contains("deletionTimestamp");
  if (object.is_object() && !unchanged_spec && !deleting) {
    if (std::optional<std::string> denial = admit(object)) {
      response["allowed"] = false;
      response["status"] = {{"code", 403}, {"reason", "Forbidden"}, {"message", *denial}};
    }
  }
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"response", std::move(response)}};
}

}  // namespace poolkeeper::controller
