#include "api/pod_policy.h"

#include <algorithm>
#include <cctype>

namespace poolkeeper::api {
namespace {

using nlohmann::json;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// alpha-numeric (separator alpha-numeric)*, separator: "." | "_" | "__" | "-"+.
bool ValidPathComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < c.size() && !IsLowerAlnum(c[i])) ++i;
    std::string_view sep = c.substr(start, i - start);
    bool dashes = std::ranges::all_of(sep, [](char ch) { return ch == '-'; });
    if (sep != "." && sep != "_" && sep != "__" && !dashes) return false;
  }
  return true;
}

// host[:port], host a dot-separated list of labels ([a-zA-Z0-9], '-' inside).
bool ValidDomain(std::string_view domain) {
  std::string_view host = domain;
  if (auto colon = domain.find(':'); colon != std::string_view::npos) {
    std::string_view port = domain.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::ranges::all_of(port, [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        }))
      return false;
    host = domain.substr(0, colon);
  }
  if (host.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || !IsAlnum(label.front()) || !IsAlnum(label.back()) ||
        !std::ranges::all_of(label, [](char c) { return IsAlnum(c) || c == '-'; })) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// As the Docker and containerd clients decide: the first component names a registry when it
// has a '.' or a ':', is "localhost", or has an uppercase letter.
bool LooksLikeDomain(std::string_view first) {
  return first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
         std::ranges::any_of(first, [](char c) { return c >= 'A' && c <= 'Z'; });
}

bool ValidTag(std::string_view tag) {
  auto word = [](char c) { return IsAlnum(c) || c == '_'; };
  return !tag.empty() && tag.size() <= 128 && word(tag.front()) &&
         std::ranges::all_of(tag, [&](char c) { return word(c) || c == '.' || c == '-'; });
}

// algorithm ":" hex, algorithm lowercase components joined by [+._-], at least 32 hex digits.
bool ValidDigest(std::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view algorithm = digest.substr(0, colon), hex = digest.substr(colon + 1);
  if (!IsLowerAlnum(algorithm.front()) || !IsLowerAlnum(algorithm.back())) return false;
  if (!std::ranges::all_of(algorithm, [](char c) {
        return IsLowerAlnum(c) || c == '+' || c == '.' || c == '_' || c == '-';
      })) {
    return false;
  }
  return hex.size() >= 32 && std::ranges::all_of(hex, [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) &&
                  !std::isupper(static_cast<unsigned char>(c));
         });
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::ranges::transform(out, out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// A JSON field's string, "" when absent or of another type (Kubernetes refuses those itself).
std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::optional<std::string> ImageIssue(const PodPolicy& policy, std::string_view image) {
  if (!ParseImageReference(image)) {
    return Quoted(image) + " is not a valid image reference";
  }
  if (policy.ImageAllowed(image)) return std::nullopt;
  return Quoted(image) +
         " is not an allowed image (the operator allows: " + policy.AllowedImages() +
         "; --allowed-pooler-images)";
}

std::optional<std::string> TolerationIssue(const PodPolicy& policy, const json& toleration) {
  if (policy.allow_blanket_tolerations || !toleration.is_object()) return std::nullopt;
  const std::string key = StringField(toleration, "key");
  if (key.empty()) {
    return "tolerates every taint (no key); the operator does not allow blanket tolerations "
           "(--allow-blanket-tolerations)";
  }
  // What Kubernetes adds to every pod itself: leave a node that is not ready or unreachable
  // after a bounded time.
  if ((key == "node.kubernetes.io/not-ready" || key == "node.kubernetes.io/unreachable") &&
      StringField(toleration, "effect") == "NoExecute" &&
      toleration.contains("tolerationSeconds") && toleration["tolerationSeconds"].is_number()) {
    return std::nullopt;
  }
  if (auto why = ReservedTaint(key)) {
    return "tolerates " + Quoted(key) + ", " + *why +
           "; the operator does not allow it (--allow-blanket-tolerations)";
  }
  return std::nullopt;
}

std::optional<std::string> PriorityClassIssue(const PodPolicy& policy, const std::string& name) {
  if (!name.starts_with("system-") || std::ranges::find(policy.system_priority_classes, name) !=
                                          policy.system_priority_classes.end()) {
    return std::nullopt;
  }
  return Quoted(name) +
         " is a system priority class, kept for the cluster's own components; the operator "
         "does not allow it (--allowed-priority-classes)";
}

}  // namespace

std::optional<ImageReference> ParseImageReference(std::string_view text) {
  if (text.empty() || text.size() > 512) return std::nullopt;
  ImageReference ref;
  std::string_view name = text;
  if (auto at = text.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(text.substr(at + 1));
    if (!ValidDigest(ref.digest)) return std::nullopt;
    name = text.substr(0, at);
  }
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(name.substr(colon + 1));
    if (!ValidTag(ref.tag)) return std::nullopt;
    name = name.substr(0, colon);
  }
  std::string_view path = name;
  size_t first_slash = name.find('/');
  if (first_slash != std::string_view::npos && LooksLikeDomain(name.substr(0, first_slash))) {
    std::string_view domain = name.substr(0, first_slash);
    if (!ValidDomain(domain)) return std::nullopt;
    ref.domain = Lower(domain);
    path = name.substr(first_slash + 1);
  } else {
    ref.domain = "docker.io";
  }
  if (ref.domain == "index.docker.io") ref.domain = "docker.io";
  if (path.empty() || path.size() > 255) return std::nullopt;
  size_t start = 0;
  while (true) {
    size_t next = path.find('/', start);
    if (!ValidPathComponent(
            path.substr(start, next == std::string_view::npos ? next : next - start))) {
      return std::nullopt;
    }
    if (next == std::string_view::npos) break;
    start = next + 1;
  }
  ref.path = std::string(path);
  if (ref.domain == "docker.io" && ref.path.find('/') == std::string::npos) {
    ref.path = "library/" + ref.path;
  }
  return ref;
}

bool ImageRule::Matches(const ImageReference& image) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kPrefix:
      return image.Repository().starts_with(prefix + "/");
    case Kind::kRepository:
      return image.Repository() == reference.Repository();
    case Kind::kExact:
      if (image.Repository() != reference.Repository()) return false;
      if (!reference.digest.empty()) return image.digest == reference.digest;
      return image.tag == reference.tag && image.digest.empty();
  }
  return false;
}

Result<ImageRule> ParseImageRule(std::string_view text) {
  ImageRule rule;
  rule.text = std::string(text);
  if (text == "*") {
    rule.kind = ImageRule::Kind::kAny;
    return rule;
  }
  const std::string field = "--allowed-pooler-images";
  if (text.ends_with("/*")) {
    std::string_view prefix = text.substr(0, text.size() - 2);
    if (prefix.find('*') == std::string_view::npos) {
      // A registry alone ("localhost:5000/*"), else a path on a registry ("ghcr.io/team/*") or on
      // the Docker Hub ("bitnami/*").
      if (prefix.find('/') == std::string_view::npos && LooksLikeDomain(prefix)) {
        if (ValidDomain(prefix)) {
          rule.kind = ImageRule::Kind::kPrefix;
          rule.prefix = Lower(prefix);
          if (rule.prefix == "index.docker.io") rule.prefix = "docker.io";
          return rule;
        }
      } else if (auto ref = ParseImageReference(std::string(prefix) + "/x");
                 ref && ref->tag.empty() && ref->digest.empty()) {
        rule.kind = ImageRule::Kind::kPrefix;
        rule.prefix = ref->Repository().substr(0, ref->Repository().size() - 2);
        return rule;
      }
    }
    return Invalid(field, Quoted(text) + " is not a repository prefix followed by /*");
  }
  if (text.find('*') != std::string_view::npos) {
    return Invalid(field, Quoted(text) +
                              ": a wildcard is only \"*\" alone or a trailing \"/*\" after a "
                              "repository path");
  }
  auto ref = ParseImageReference(text);
  if (!ref) return Invalid(field, Quoted(text) + " is not an image repository or reference");
  rule.kind = ref->tag.empty() && ref->digest.empty() ? ImageRule::Kind::kRepository
                                                      : ImageRule::Kind::kExact;
  rule.reference = std::move(*ref);
  return rule;
}

PodPolicy::PodPolicy() : default_image(kDefaultImage) {
  auto ref = ParseImageReference(kDefaultImage);
  if (ref) images.push_back({ref->Repository(), ImageRule::Kind::kRepository, *ref, ""});
}

bool PodPolicy::ImageAllowed(std::string_view image) const {
  auto ref = ParseImageReference(image);
  if (!ref) return false;
  if (!default_image.empty() && image == default_image) return true;
  if (!agent_image.empty() && image == agent_image) return true;
  return std::ranges::any_of(images, [&](const ImageRule& rule) { return rule.Matches(*ref); });
}

std::string PodPolicy::AllowedImages() const {
  std::string out;
  for (const auto& rule : images) out += (out.empty() ? "" : ", ") + rule.text;
  if (!default_image.empty()) out += (out.empty() ? "" : ", ") + default_image;
  return out;
}

Result<PodPolicy> MakePodPolicy(const std::vector<std::string>& images,
                                const std::vector<std::string>& priority_classes,
                                bool allow_blanket_tolerations, const ParseDefaults& defaults) {
  PodPolicy policy;
  policy.images.clear();
  policy.default_image = defaults.image;
  policy.agent_image = defaults.agent_image;
  policy.allow_blanket_tolerations = allow_blanket_tolerations;
  std::vector<FieldIssue> issues;
  for (const auto& text : images) {
    if (text.empty()) continue;
    if (auto rule = ParseImageRule(text)) {
      policy.images.push_back(std::move(*rule));
    } else {
      issues.insert(issues.end(), rule.error().fields.begin(), rule.error().fields.end());
    }
  }
  if (policy.images.empty() && issues.empty()) {
    auto ref = ParseImageReference(defaults.image);
    if (!ref) {
      return Invalid("--default-pgbouncer-image",
                     Quoted(defaults.image) + " is not a valid image reference");
    }
    auto rule = ParseImageRule(ref->Repository());
    if (!rule) return std::unexpected(rule.error());
    policy.images.push_back(std::move(*rule));
  }
  for (const auto& name : priority_classes) {
    if (name.empty()) continue;
    if (!name.starts_with("system-")) {
      issues.push_back({"--allowed-priority-classes",
                        Quoted(name) + " is not a system-* class (any other class is allowed)"});
      continue;
    }
    policy.system_priority_classes.push_back(name);
  }
  if (!issues.empty()) return Invalid(std::move(issues));
  return policy;
}

std::optional<std::string> ReservedTaint(std::string_view key) {
  if (key == "node-role.kubernetes.io/control-plane" || key == "node-role.kubernetes.io/master") {
    return std::string("the taint that keeps workloads off control plane nodes");
  }
  if (key == "CriticalAddonsOnly") {
    return std::string("the taint that keeps nodes for critical add-ons");
  }
  if (key.starts_with("node.kubernetes.io/") ||
      key.starts_with("node.cloudprovider.kubernetes.io/")) {
    return std::string(
        "a taint Kubernetes sets on nodes that are cordoned, not ready or under pressure");
  }
  return std::nullopt;
}

std::vector<FieldIssue> CheckPodPolicy(const PodPolicy& policy, const ConnectionPool& pool) {
  const PoolerSpec& pooler = pool.spec.pooler;
  std::vector<FieldIssue> issues;
  if (auto issue = ImageIssue(policy, pooler.image)) {
    issues.push_back({"spec.pooler.image", *issue});
  }
  if (pooler.tolerations.is_array()) {
    for (size_t i = 0; i < pooler.tolerations.size(); ++i) {
      if (auto issue = TolerationIssue(policy, pooler.tolerations[i])) {
        issues.push_back({"spec.pooler.tolerations[" + std::to_string(i) + "]", *issue});
      }
    }
  }
  if (auto issue = PriorityClassIssue(policy, pooler.priority_class_name)) {
    issues.push_back({"spec.pooler.priorityClassName", *issue});
  }
  return issues;
}

std::vector<FieldIssue> CheckPodSpecPolicy(const PodPolicy& policy, const json& pod_spec,
                                           const std::string& path) {
  std::vector<FieldIssue> issues;
  if (!pod_spec.is_object()) return {{path, "not a pod spec"}};
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    auto it = pod_spec.find(list);
    if (it == pod_spec.end() || !it->is_array()) continue;
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string field = path + "." + list + "[" + std::to_string(i) + "].image";
      const json& container = (*it)[i];
      const std::string image = container.is_object() ? StringField(container, "image") : "";
      if (auto issue = ImageIssue(policy, image)) issues.push_back({field, *issue});
    }
  }
  if (auto it = pod_spec.find("tolerations"); it != pod_spec.end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if (auto issue = TolerationIssue(policy, (*it)[i])) {
        issues.push_back({path + ".tolerations[" + std::to_string(i) + "]", *issue});
      }
    }
  }
  if (auto issue = PriorityClassIssue(policy, StringField(pod_spec, "priorityClassName"))) {
    issues.push_back({path + ".priorityClassName", *issue});
  }
  for (const char* host : {"hostNetwork", "hostPID", "hostIPC"}) {
    auto it = pod_spec.find(host);
    if (it != pod_spec.end() && it->is_boolean() && it->get<bool>()) {
      issues.push_back({path + "." + host, "shares the node's namespaces; never allowed"});
    }
  }
  return issues;
}

std::string DescribeIssues(const std::vector<FieldIssue>& issues) {
  std::string out;
  for (const auto& issue : issues) {
    out += (out.empty() ? "" : "; ") + issue.field + ": " + issue.message;
  }
  return out;
}

}  // namespace poolkeeper::api
