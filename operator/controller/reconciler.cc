// Reconcile as a recipe: each step either moves the pass on or ends it early with a condition that
// says why (the spec does not parse, the budget does not fit, a Secret is missing, a name is
// taken). Whatever step ends it, readiness is reported from the pods that run.
#include "controller/reconciler.h"

#include <algorithm>

#include "api/parse.h"
#include "budget/planner.h"
#include "budget/servers.h"
#include "common/base64.h"
#include "controller/auth_query.h"
#include "controller/cache_trim.h"
#include "controller/object_key.h"
#include "controller/pause.h"
#include "controller/pods.h"
#include "controller/pool_writer.h"
#include "controller/reconcile_agents.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

// Stamps the hash of the object's content, so the next reconcile can tell a change of what the
// operator wants (including a field it stopped setting) from the cache alone.
json Stamp(json object) {
  std::string hash = render::AppliedHash(object);
  object["metadata"]["annotations"][render::kAppliedHashAnnotation] = hash;
  return object;
}

bool HasFinalizer(const json& pool, std::string_view name) {
  for (const auto& f : pool.value("/metadata/finalizers"_json_pointer, json::array())) {
    if (f.is_string() && f.get<std::string>() == name) return true;
  }
  return false;
}

api::Condition MakeCondition(const char* type, bool value, std::string reason, std::string message,
                             int64_t generation) {
  return {type, value ? "True" : "False", std::move(reason), std::move(message), generation, ""};
}

// One reconcile of a live pool: the state the steps share.
class Pass {
 public:
  explicit Pass(const PoolInputs& in)
      : in_(in),
        stored_status_(in.pool.value("status", json::object())),
        status_(api::StatusFromJson(stored_status_)),
        generation_(in.pool.value("/metadata/generation"_json_pointer, int64_t{0})) {
    status_.observed_generation = generation_;
    status_.live = in.live;
  }

  ReconcileResult Run() {
    if (ParseSpec() && PlanBudget() && Render() && DecideWrites()) {
      DrivePods();
    } else {
      KeepLastGoodPods();
    }
    pause_ = TrackPause(in_, pool_.spec.paused, generation_, status_, result_);
    ReportRollout();
    // The finalizer holds a deletion for the pods: a pool takes it with its first pod (the
    // writer puts it in place before any pod), and a pool with no pod needs no write for it.
    if (!HasFinalizer(in_.pool, kFinalizer) &&
        (!in_.pods.empty() || !result_.create_pods.empty())) {
      result_.finalizer = FinalizerChange::kAdd;
    }
    return Finish();
  }

 private:
  void Block(const char* reason, const std::string& message) {
    result_.blocked_reason = message;
    SetCondition(MakeCondition(api::kConditionDegraded, true, reason, message, generation_));
    result_.events.push_back({"Warning", reason, message});
  }
  void SetCondition(api::Condition condition) {
    api::SetCondition(status_.conditions, std::move(condition), in_.now);
  }

  bool ParseSpec() {
    auto pool = api::ParseConnectionPool(in_.pool, in_.defaults);
    if (!pool) {
      // The objects of the last valid spec keep running, and keep being charged (holdings).
      Block("InvalidSpec", pool.error().ToString());
      return false;
    }
    pool_ = std::move(*pool);
    status_.instances = pool_.spec.pooler.instances;
    status_.selector = render::PodSelector(pool_);
    return CheckPolicy(api::CheckPodPolicy(in_.policy, pool_));
  }

  // A pool the policy refuses is not planned, rendered or written: its password Secrets are not
  // even read. Pods it already runs keep running (KeepLastGoodPods), as for any blocked spec.
  bool CheckPolicy(const std::vector<FieldIssue>& issues) {
    if (issues.empty()) return true;
    Block("PolicyViolation",
          "refused by the operator's pod policy, nothing rendered: " + api::DescribeIssues(issues));
    return false;
  }

  bool PlanBudget() {
    static const budget::ServerDirectory kNoServers;
    const budget::ServerDirectory& directory = in_.directory ? *in_.directory : kNoServers;
    holdings_ = directory.Rekey(in_.holdings);
    budget::Plan plan =
        budget::PlanOnRekeyed(budget::Pointers(in_.server_pools), directory, holdings_);
    for (const auto& p : plan.pools) {
      if (p.namespace_ == pool_.metadata.namespace_ && p.name == pool_.metadata.name) mine_ = p;
    }
    if (!mine_) {
      Block("InvalidServer", "pool missing from its server's ledger");
      return false;
    }
    if (mine_->refused) {
      // Only this pool: the others on the server are planned without it, its pods still charged.
      status_.budget = {mine_->server, 0, 0, 0, 0, 0, {}, Held()};
      const budget::Finding& why = mine_->findings.back();
      SetCondition(
          MakeCondition(api::kConditionBudgetExceeded, true, why.code, why.message, generation_));
      Block(why.code.c_str(), why.message);
      return false;
    }
    // Placed: a pool on a PostgresServer connects to the server's endpoint, under its policy.
    pool_ = directory.Place(pool_).pool;
    const budget::ServerPlan* server = nullptr;
    for (const auto& s : plan.servers) {
      if (s.server == mine_->server) server = &s;
    }
    status_.budget = {mine_->server,
                      server ? server->usable : 0,
                      server ? server->allocated : 0,
                      mine_->per_instance,
                      mine_->worst_case,
                      server ? server->headroom : 0,
                      {},
                      Held()};
    for (const auto& d : mine_->databases) {
      status_.budget.databases.push_back({d.name, d.max_db_connections, d.derived});
    }
    std::string arithmetic;
    for (const auto& f : mine_->findings) {
      if (f.code == "BudgetExceeded") {
        arithmetic = f.message;
      } else if (f.severity == budget::Severity::kError || f.code == "PolicySetByServer") {
        // Not the server's budget, so the pool still rolls out; but `check` fails on it, and the
        // user should hear of it too (e.g. ClientCapacityExceeded).
        result_.events.push_back({"Warning", f.code, f.message});
      }
    }
    const bool exceeded = mine_->verdict == budget::Verdict::kBudgetExceeded;
    SetCondition(MakeCondition(api::kConditionBudgetExceeded, exceeded,
                               exceeded ? "Exceeded" : "WithinBudget",
                               exceeded ? arithmetic : FitsMessage(), generation_));
    if (!exceeded) return true;
    if (pool_.spec.budget_policy == api::BudgetPolicy::kEnforce) {
      Block("BudgetExceeded",
            "not rolled out, the last good configuration keeps running: " + arithmetic);
      return false;
    }
    result_.events.push_back({"Warning", "BudgetExceeded", arithmetic});
    return true;
  }

  int64_t Held() const {
    auto server = holdings_.find(mine_->server);
    if (server == holdings_.end()) return 0;
    auto it = server->second.find(ObjectKey(pool_.metadata.namespace_, pool_.metadata.name));
    return it == server->second.end() ? 0 : it->second;
  }

  std::string FitsMessage() const {
    if (mine_->instances == 0) {
      return "0 instances: no pgbouncer runs and nothing is charged on " + mine_->server;
    }
    return "(" + std::to_string(mine_->instances) + " + " + std::to_string(mine_->max_surge) +
           ") x " + std::to_string(mine_->per_instance) + " = " +
           std::to_string(mine_->worst_case) + " connections fit in " +
           std::to_string(status_.budget.usable) + " usable on " + mine_->server;
  }

  // authQuery: the auth role's password from the Secret the operator keeps for the server; its
  // resourceVersion joins the revision, so a rotation rolls the pods.
  bool AddAuthPassword(secrets::ResolvedPasswords& passwords) {
    const std::string& server = pool_.spec.server_ref;
    if (const std::string manager =
            in_.directory ? AuthRoleManager(in_.directory->servers(), in_.server_pools, server)
                          : server;
        manager != server) {
      Block("AuthRoleShared", "spec.serverRef: PostgresServer " + server +
                                  " reaches the same PostgreSQL server as PostgresServer " +
                                  manager + ", which manages its auth role " + api::kAuthUser +
                                  ": set spec.serverRef.name to " + manager +
                                  ", or spec.authentication.mode to userlist");
      return false;
    }
    const std::string name = AuthSecretName(server);
    auto secret = in_.auth_secret_namespace.empty()
                      ? std::nullopt
                      : in_.secrets.Find(in_.auth_secret_namespace, name);
    if (!secret || !secret->data.contains(kAuthSecretKey)) {
      Block("AuthQueryNotReady",
            "spec.authentication: waiting for the operator to set authQuery up on PostgresServer " +
                pool_.spec.server_ref + " (its AuthQueryReady condition says why it is not)");
      return false;
    }
    passwords.passwords[api::kAuthUser] = secret->data.at(kAuthSecretKey);
    passwords.revision += (passwords.revision.empty() ? "" : ",") + in_.auth_secret_namespace +
                          "/" + name + "@" + secret->resource_version;
    return true;
  }

  // The pooler agent's password: the one the pool's auth Secret holds (so it never changes under
  // a running agent), else the fresh one Gather made.
  std::string AgentPassword() const {
    return StoredAgentPassword(in_.owned).value_or(in_.new_agent_password);
  }

  bool Render() {
    auto passwords = secrets::ResolvePasswords(pool_, in_.secrets);
    if (!passwords) {
      // An unlabelled Secret is as good as missing, with its own reason: the fix is a label.
      Block(passwords.error().code == ErrorCode::kUnauthorized ? "SecretNotExposed"
                                                               : "SecretNotFound",
            passwords.error().ToString());
      return false;
    }
    if (pool_.spec.auth_mode == api::AuthMode::kAuthQuery && !AddAuthPassword(*passwords)) {
      return false;
    }
    if (!pool_.spec.pooler.agent_image.empty()) {
      std::string agent = AgentPassword();
      if (agent.empty()) {
        Block("AgentPasswordUnavailable", "no password could be generated for the pooler agent");
        return false;
      }
      passwords->passwords[api::kAgentUser] = std::move(agent);
    }
    // The TLS Secrets: same label rule and reasons; their certificates' hash joins the revision,
    // so a renewed certificate rolls the pods (until a reload agent can apply it in place).
    // A CA in a ConfigMap likewise (same label); one copied from the PostgresServer joins the
    // hash in BuildObjects.
    auto tls = secrets::ResolveTls(pool_, in_.secrets, &in_.config_maps);
    if (!tls) {
      Block(tls.error().code == ErrorCode::kUnauthorized ? "SecretNotExposed" : "SecretNotFound",
            tls.error().ToString());
      return false;
    }
    const bool copies_ca = pool_.spec.tls.server && pool_.spec.tls.server->ca_from_server;
    if (copies_ca && !in_.server_ca) {
      Block("SecretNotFound", in_.server_ca.error().ToString());
      return false;
    }
    // The TLS files' revision also goes into the pod hash: PgBouncer keeps the certificates it
    // started with (a renewal rolls the pods, agent or not); a password rotation is RELOADed.
    auto built = render::BuildObjects(pool_, *mine_, passwords->passwords,
                                      secrets::WithTlsRevision(passwords->revision, *tls),
                                      copies_ca ? *in_.server_ca : std::string(), *tls);
    if (!built) {
      Block("InvalidSpec", built.error().ToString());
      return false;
    }
    objects_ = std::move(*built);
    // Every container and scheduling field of what would run, not only the ones a pool sets.
    return CheckPolicy(api::CheckPodSpecPolicy(
        in_.policy, objects_->pod_template.value("spec", json()), "pod.spec"));
  }

  // Applies what is missing, changed, or was edited by someone else (replica drift included);
  // deletes what is no longer wanted; writes nothing when a name is taken by a foreign object.
  bool DecideWrites() {
    status_.config_hash = objects_->config_hash;
    std::vector<json> apply;
    std::string taken;
    // A held raise keeps the ConfigMap as stored, so the pods that exist stay within the limit.
    const std::optional<std::string> held = HoldRaise(in_, pool_, *mine_);
    if (held) waiting_for_ = *held;
    for (const auto& kind : render::kOwnedKinds) {
      const json& want = (*objects_).*kind.member;
      const std::string name(kind.kind);
      auto stored = in_.owned.find(name);
      if (held && name == "ConfigMap" && stored != in_.owned.end()) continue;
      if (want.is_null()) {
        if (stored != in_.owned.end()) result_.delete_kinds.push_back(name);
        continue;
      }
      if (auto conflict = in_.conflicts.find(name); conflict != in_.conflicts.end()) {
        taken += (taken.empty() ? "" : "; ") + conflict->second;
        continue;
      }
      json stamped = Stamp(want);
      // A compact cached object (cache_trim.h) held exactly what its hash stamps: equal hashes
      // are then the whole answer.
      bool unchanged = stored != in_.owned.end() &&
                       StringAnnotation(stored->second, render::kAppliedHashAnnotation) ==
                           StringAnnotation(stamped, render::kAppliedHashAnnotation) &&
                       (CachedAsApplied(stored->second) || Contains(stored->second, stamped));
      if (unchanged) continue;
      // A new `paused` alone is no rollout: the pods keep running the same configuration. With
      // no pod (0 instances) the configuration written is the whole rollout: the status follows
      // the writes.
      rolls_ = rolls_ || (!in_.pods.empty() &&
                          (stored == in_.owned.end() || !OnlyPausedDiffers(stored->second, want)));
      apply.push_back(std::move(stamped));
    }
    if (!taken.empty()) {
      result_.delete_kinds.clear();
      Block("NameConflict",
            "nothing written: " + taken + "; delete or rename it, or give the pool another name");
      return false;
    }
    result_.apply = std::move(apply);
    if (!result_.apply.empty()) {
      bool created = !in_.owned.contains("ConfigMap");
      result_.events.push_back(
          {"Normal", created ? "Created" : "Applied",
           (created ? "created pooler with configuration " : "applied configuration ") +
               objects_->config_hash.substr(0, 12)});
    }
    SetCondition(MakeCondition(api::kConditionDegraded, false, "AsPlanned",
                               "the planned configuration is rolled out", generation_));
    return true;
  }

  // Starts and retires pods so that every pod runs the new configuration, never holding more
  // than the pool's limit at any instant (pods.h).
  void DrivePods() {
    const auto& pooler = pool_.spec.pooler;
    PodTarget target{pool_.metadata.name,
                     pooler.instances,
                     static_cast<int>(budget::PodsCharged(pooler)),
                     objects_->pod_hash,
                     mine_->per_instance,
                     mine_->limit,
                     pooler.max_surge == 0 ? 1 : 0};
    pods_ = ApplyPodPlan(target, objects_->pod_template);
    const std::string reloading = ConfirmReloads(in_, pool_, *objects_, *mine_, result_);
    if (!reloading.empty()) waiting_for_ += (waiting_for_.empty() ? "" : "; ") + reloading;
  }

  // While a newer spec is refused (over budget, invalid, a Secret missing), the last admitted
  // configuration keeps running at its admitted size: a pod evicted or deleted meanwhile is
  // replaced by a copy of one of its siblings, within what that configuration was admitted with.
  void KeepLastGoodPods() {
    auto config_map = in_.owned.find("ConfigMap");
    if (config_map == in_.owned.end()) return;
    const json& admitted = config_map->second;
    auto instances = IntAnnotation(admitted, render::kInstancesAnnotation);
    auto surge = IntAnnotation(admitted, render::kMaxSurgeAnnotation);
    auto per_pod = IntAnnotation(admitted, render::kPodConnectionsAnnotation);
    auto planned = PlannedConnections(admitted);
    // With the agent the pods carry the admitted pod hash (what a RELOAD cannot apply).
    std::string hash = StringAnnotation(admitted, render::kPodHashAnnotation);
    if (hash.empty()) hash = api::StatusFromJson(stored_status_).config_hash;
    const json* sibling = nullptr;
    for (const auto& pod : in_.pods) {
      ObservedPod o = ObservePod(pod, PoolUid(in_.pool), 0);
      if (o.owned && !o.terminating && !o.finished && o.config_hash == hash) sibling = &pod;
    }
    if (!instances || !surge || !per_pod || !planned || !sibling || hash.empty()) return;
    // A pod the policy refuses (it ran before the policy did) keeps running, but is not copied.
    if (!api::CheckPodSpecPolicy(in_.policy, (*sibling)["spec"], "spec").empty()) return;
    json pod_template = {{"apiVersion", "v1"},
                         {"kind", "Pod"},
                         {"metadata",
                          {{"namespace", (*sibling)["metadata"]["namespace"]},
                           {"labels", (*sibling)["metadata"]["labels"]},
                           {"annotations", (*sibling)["metadata"]["annotations"]},
                           {"ownerReferences", (*sibling)["metadata"]["ownerReferences"]}}},
                         {"spec", (*sibling)["spec"]}};
    pod_template["spec"].erase("nodeName");  // the scheduler places the copy
    const std::string name = in_.pool.value("/metadata/name"_json_pointer, "");
    const int pods = *instances == 0 ? 0 : static_cast<int>(*instances + *surge);
    PodTarget target{name,     static_cast<int>(*instances), pods, hash, *per_pod,
                     *planned, *surge == 0 ? 1 : 0};
    pods_ = ApplyPodPlan(target, pod_template);
  }

  PodChanges ApplyPodPlan(const PodTarget& target, const json& pod_template) {
    std::vector<ObservedPod> observed;
    for (const auto& pod : in_.pods) {
      ObservedPod o = ObservePod(pod, PoolUid(in_.pool), target.connections);
      // A restarted container of an older pod loads the ConfigMap as it is now.
      o.connections = std::max(o.connections, target.connections);
      observed.push_back(std::move(o));
    }
    PodChanges changes = PlanPods(target, observed);
    for (int slot : changes.create) {
      result_.create_pods.push_back(render::PodInSlot(pod_template, target.pool_name, slot));
    }
    for (const auto& pod : changes.remove) {
      result_.delete_pods.push_back({pod.name, pod.uid, pod.resource_version});
    }
    return changes;
  }

  // Readiness comes from the running pods, whether or not the newest spec could be rolled out.
  void ReportRollout() {
    const int64_t instances = status_.instances;
    status_.ready_instances = pods_ ? pods_->ready : ReadyPods();
    // While a spec is blocked, keeping its last admitted pods is not a rollout.
    bool rolling = result_.blocked_reason.empty() && pods_ &&
                   (rolls_ || !pods_->complete || !waiting_for_.empty());
    std::string progress =
        "pods are being updated to configuration " + status_.config_hash.substr(0, 12);
    if (pods_ && !pods_->waiting.empty()) progress += "; waiting: " + pods_->waiting;
    if (!waiting_for_.empty()) progress += "; waiting: " + waiting_for_;
    const bool pausing = !pause_.behind.empty();
    const std::string pause_wait =
        pausing ? PauseWaitingMessage(pool_.spec.paused, pause_.behind) : "";
    if (pausing) progress += "; waiting: " + pause_wait;
    if (!rolling && pausing) {
      // Not a rollout (Ready stays as it is): the configuration is there, the pause is not yet.
      SetCondition(MakeCondition(api::kConditionProgressing, true,
                                 pool_.spec.paused ? kPausingReason : kResumingReason, pause_wait,
                                 generation_));
    } else {
      SetCondition(MakeCondition(
          api::kConditionProgressing, rolling, rolling ? "RollingOut" : "RolloutComplete",
          rolling ? progress : "every pod runs the current configuration", generation_));
    }
    bool ready = result_.blocked_reason.empty() && !rolling && status_.ready_instances >= instances;
    std::string message = std::to_string(status_.ready_instances) + " of " +
                          std::to_string(instances) + " instances ready" +
                          (result_.blocked_reason.empty() ? "" : "; " + result_.blocked_reason);
    SetCondition(MakeCondition(api::kConditionReady, ready,
                               ready                             ? "Available"
                               : !result_.blocked_reason.empty() ? "Blocked"
                                                                 : "InstancesNotReady",
                               message, generation_));
  }

  // Ready pods of any configuration: what serves while the pool is blocked.
  int64_t ReadyPods() const {
    int64_t ready = 0;
    for (const auto& pod : in_.pods) {
      ObservedPod o = ObservePod(pod, PoolUid(in_.pool), 0);
      ready += o.owned && o.ready && !o.terminating ? 1 : 0;
    }
    return ready;
  }

  ReconcileResult Finish() {
    if (!objects_ || !result_.blocked_reason.empty()) {
      status_.config_hash = api::StatusFromJson(stored_status_).config_hash;
    }
    if (api::StatusFromJson(stored_status_) != status_) {
      result_.status = api::StatusToJson(status_);
      // A merge patch keeps what it does not name: the live figures of a pool without the agent.
      if (!status_.live && stored_status_.contains("live")) (*result_.status)["live"] = nullptr;
    }
    return std::move(result_);
  }

  const PoolInputs& in_;
  const json stored_status_;
  api::PoolStatus status_;
  const int64_t generation_;
  api::ConnectionPool pool_;
  std::optional<budget::PoolPlan> mine_;
  budget::Holdings holdings_;  // by budget key
  std::optional<render::OwnedObjects> objects_;
  std::optional<PodChanges> pods_;  // what DrivePods or KeepLastGoodPods decided
  std::string waiting_for_;         // a held raise, agents yet to reload (ReportRollout)
  PauseProgress pause_;             // pods behind spec.paused (TrackPause)
  bool rolls_ = false;  // DecideWrites applies more than a change of `paused` to running pods
  ReconcileResult result_;
};

// A pool being deleted keeps its finalizer until its pods are gone: the operator deletes them
// (the garbage collector would only act once the pool is gone), and they stay charged to their
// server while they drain. `kubectl delete --cascade=orphan` leaves the pods to the user: the
// garbage collector removes their owner reference first, they are then charged as pods of no pool,
// and the finalizer goes.
ReconcileResult ReconcileDeletion(const PoolInputs& in) {
  ReconcileResult result;
  if (!HasFinalizer(in.pool, kFinalizer)) return result;
  if (HasFinalizer(in.pool, "orphan")) return result;  // the garbage collector orphans first
  bool owned = false;
  for (const auto& pod : in.pods) {
    ObservedPod o = ObservePod(pod, PoolUid(in.pool), 0);
    if (!o.owned) continue;
    owned = true;
    if (!o.terminating) result.delete_pods.push_back({o.name, o.uid, o.resource_version});
  }
  if (!owned) result.finalizer = FinalizerChange::kRemove;
  return result;
}

}  // namespace

std::optional<std::string> StoredAgentPassword(const std::map<std::string, json>& owned) {
  auto stored = owned.find("Secret");
  if (stored == owned.end()) return std::nullopt;
  const json& data = stored->second.value("data", json::object());
  auto it = data.find(render::kAgentPasswordKey);
  if (it == data.end() || !it->is_string()) return std::nullopt;
  auto decoded = DecodeBase64(it->get<std::string>());
  if (!decoded || decoded->empty()) return std::nullopt;
  return decoded;
}

ReconcileResult Reconcile(const PoolInputs& in) {
  if (in.pool.contains("/metadata/deletionTimestamp"_json_pointer)) return ReconcileDeletion(in);
  return Pass(in).Run();
}

}  // namespace poolkeeper::controller
