// What a pool author may ask of the pooler pods, as the cluster admin set it with the operator's
// flags. The pods mount the rendered userlist, that is the passwords of every user of the pool, and
// run with the pool's scheduling fields; so the image (any container's) must come from a repository
// the admin allows, and the pods must not reach the cluster's own nodes or workloads' priority:
// no system-* priority class and no toleration of every taint or of the taints that guard control
// plane nodes and node conditions, unless the admin allows them. One pure check, used by the
// reconciler, the admission webhook and `poolkeeper check`/`render`, returns every finding with its
// field path.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/connection_pool.h"
#include "api/parse.h"
#include "common/error.h"

namespace poolkeeper::api {

// An image reference as container runtimes read it, normalised: the Docker Hub's short names get
// their registry ("pgbouncer" is docker.io/library/pgbouncer), the registry host is lowercased.
struct ImageReference {
  std::string domain;  // "docker.io", "localhost:5000", "ghcr.io"
  std::string path;    // "library/pgbouncer", "cloudnative-pg/pgbouncer"
  std::string tag;     // "" when none
  std::string digest;  // "" when none, else "sha256:<hex>"
  std::string Repository() const { return domain + "/" + path; }
};

// nullopt when `text` is not a valid reference (distribution's grammar: lowercase path components,
// a tag of at most 128 word characters, a digest of at least 32 hex digits); IPv6 hosts are not
// accepted.
std::optional<ImageReference> ParseImageReference(std::string_view text);

// One entry of --allowed-pooler-images:
//   REPOSITORY          that repository, any tag or digest ("docker.io/bitnami/pgbouncer" matches
//                       neither ".../pgbouncer-evil" nor ".../pgbouncer.evil.com/x")
//   REPOSITORY:TAG      that tag only, without a digest (a digest would decide what runs)
//   REPOSITORY@DIGEST   that digest, with any tag
//   PREFIX/*            every repository under PREFIX (a registry, or a registry and path)
//   *                   every image
// A '*' anywhere else is an error.
struct ImageRule {
  std::string text;  // as given
  enum class Kind { kAny, kPrefix, kRepository, kExact } kind = Kind::kRepository;
  ImageReference reference;  // kRepository, kExact
  std::string prefix;        // kPrefix: normalised, without the trailing "/"
  bool Matches(const ImageReference& image) const;
};
Result<ImageRule> ParseImageRule(std::string_view text);

struct PodPolicy {
  // What the operator does with no policy flags: the built-in default image's repository.
  PodPolicy();

  // The default image (the operator's --default-pgbouncer-image) is always allowed on top of these.
  std::vector<ImageRule> images;
  std::string default_image;
  // The pooler agent's image (--agent-image, the operator's own): the renderer puts it in every
  // pod, so it is allowed too; users cannot name it (spec.pooler.image is PgBouncer's).
  std::string agent_image;
  // system-* priority classes allowed (others are not the policy's business: any is allowed).
  std::vector<std::string> system_priority_classes;
  // Tolerations of every taint (no key, operator Exists) and of the reserved taints
  // (ReservedTaint): refused unless this is set.
  bool allow_blanket_tolerations = false;

  bool ImageAllowed(std::string_view image) const;
  std::string AllowedImages() const;  // "a, b, c" for messages
};

// From the flags' values. `images` empty: the default image's repository. Errors name the flag.
Result<PodPolicy> MakePodPolicy(const std::vector<std::string>& images,
                                const std::vector<std::string>& priority_classes,
                                bool allow_blanket_tolerations, const ParseDefaults& defaults);

// Why a toleration of `key` is not for pool authors: a taint that keeps workloads off control plane
// nodes, critical add-on nodes, or nodes in a bad condition (not ready, unschedulable, under
// pressure); nullopt for other keys. The not-ready and unreachable NoExecute taints with a bounded
// tolerationSeconds (what Kubernetes adds to every pod) are fine and never reach here.
std::optional<std::string> ReservedTaint(std::string_view key);

// Every finding on the pool's own fields: spec.pooler.image, spec.pooler.tolerations[i],
// spec.pooler.priorityClassName. Empty when the pool is allowed.
std::vector<FieldIssue> CheckPodPolicy(const PodPolicy& policy, const ConnectionPool& pool);

// The same on a pod spec as rendered or as found running (every container, init and ephemeral
// container image, tolerations, priorityClassName; hostNetwork, hostPID, hostIPC are never set by
// the operator and always refused), with paths under `path` (e.g. "spec").
std::vector<FieldIssue> CheckPodSpecPolicy(const PodPolicy& policy, const nlohmann::json& pod_spec,
                                           const std::string& path);

// "field: message; field: message".
std::string DescribeIssues(const std::vector<FieldIssue>& issues);

}  // namespace poolkeeper::api
