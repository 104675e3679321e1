// Admission at apply time: the operator's validating webhook for ConnectionPools. A create or a
// spec change whose plan does not fit its server (under the server's Enforce policy), or that the
// server refuses (a missing PostgresServer, a namespace it does not admit, a conflicting inline
// declaration), is denied with the planner's arithmetic, so `kubectl apply` and
// `kubectl apply --dry-run=server` in a pipeline show it before anything is stored. The webhook
// only refuses early what the reconciler would refuse anyway: with the webhook down (failure
// policy Ignore) the operator still enforces the budget. A pool the operator's pod policy refuses
// (an image it does not allow, a system priority class, a blanket toleration) is denied with the
// field and what is allowed.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/parse.h"
#include "api/pod_policy.h"
#include "budget/planner.h"
#include "budget/servers.h"

namespace poolkeeper::controller {

// Where the webhook is served; the ValidatingWebhookConfiguration points here.
inline constexpr char kValidatePoolPath[] = "/validate-connectionpool";

struct AdmissionInputs {
  // Every other valid pool on the candidate's budget (the candidate's stored version excluded).
  std::vector<budget::SharedPool> others;
  const budget::ServerDirectory* directory = nullptr;
  budget::Holdings holdings;  // by reference key, as for reconciles
};

// Why `object` (a ConnectionPool as submitted) is refused, or nullopt when it is admitted. `gather`
// returns the inputs for the candidate's budget (by its budget key) and is called only when the
// candidate parses.
std::optional<std::string> AdmitPool(
    const nlohmann::json& object, const api::ParseDefaults& defaults, const api::PodPolicy& policy,
    const budget::ServerDirectory& directory,
    const std::function<AdmissionInputs(const api::ConnectionPool& candidate)>& gather);

// Why the pod policy refuses `object`, or nullopt (also when it does not parse: AdmitPool says
// why). Needs no cache, so it answers before the caches are synced too.
std::optional<std::string> PolicyDenial(const nlohmann::json& object,
                                        const api::ParseDefaults& defaults,
                                        const api::PodPolicy& policy);

// An AdmissionReview (admission.k8s.io/v1) request in, its response out: the request's uid, and
// `admit`'s verdict on request.object. An update that leaves the spec as it was (labels, the
// operator's finalizer) is allowed whatever the budget says, so nothing unrelated is blocked;
// so is a pool being deleted. A body that is not a review is answered with an error status.
nlohmann::json Review(
    const std::string& body,
    const std::function<std::optional<std::string>(const nlohmann::json&)>& admit);

}  // namespace poolkeeper::controller
