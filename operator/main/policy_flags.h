// The flags of the pod policy (api/pod_policy.h), declared alike on `run`, `check` and `render`,
// so the offline commands refuse what the operator would when given the operator's values.
#pragma once

#include <string>
#include <vector>

#include "api/parse.h"
#include "api/pod_policy.h"
#include "common/error.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace poolkeeper::cli {

class PodPolicyFlags {
 public:
  // Declares --allowed-pooler-images, --allowed-priority-classes, --allow-blanket-tolerations.
  void Add(CLI::App& command);
  // Whether any of them was on the command line (check and render apply the policy only then).
  bool Given() const;
  // After a successful parse; unset flags take the operator's defaults. Errors name the flag.
  Result<api::PodPolicy> Policy(const api::ParseDefaults& defaults) const;

 private:
  std::string images_;
  std::string priority_classes_;
  bool allow_blanket_tolerations_ = false;
  std::vector<const CLI::Option*> options_;
};

}  // namespace poolkeeper::cli
