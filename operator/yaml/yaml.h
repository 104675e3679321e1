// YAML to JSON, the way Kubernetes reads manifests: multi-document streams, plain scalars typed as
// YAML 1.2's core schema (null, true/false, integers, floats), quoted scalars always strings.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace poolkeeper::yaml {

// Every non-empty document of `text`, in order. `source` names the input in errors
// ("quickstart.yaml:12:3: ...").
Result<std::vector<nlohmann::json>> ParseYamlDocuments(std::string_view text,
                                                       std::string_view source);

// JSON to YAML for output (`poolkeeper render`): block style, keys in the JSON's (sorted) order,
// strings quoted when they would otherwise read as another type.
std::string ToYaml(const nlohmann::json& value);

}  // namespace poolkeeper::yaml
