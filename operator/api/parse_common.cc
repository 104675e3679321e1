// The pieces both resources' parsers share.
#include "api/parse_common.h"

#include <charconv>

#include "api/names.h"

namespace poolkeeper::api {

using nlohmann::json;

void ReadOverhead(FieldReader& reader, Overhead& overhead) {
  auto text = reader.IntOrString("overhead");
  if (!text) return;
  std::string_view digits = *text;
  bool percent = !digits.empty() && digits.back() == '%';
  if (percent) digits.remove_suffix(1);
  int64_t value = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value < 0 ||
      (percent && value > 100) || value > kMaxBackends) {
    reader.Fail("overhead",
                "must be a non-negative integer or a percentage like \"20%\" (0-100%), "
                "not \"" +
                    *text + "\"");
    return;
  }
  overhead = {value, percent};
}

void ReadMetadata(const json& object, ObjectMeta& meta, std::vector<FieldIssue>& issues,
                  size_t max_name_length) {
  FieldReader reader(object.contains("metadata") ? &object["metadata"] : nullptr, "metadata",
                     issues);
  if (!reader.present()) {
    issues.push_back({"metadata.name", "required"});
    return;
  }
  if (auto name = reader.String("name", true)) {
    meta.name = *name;
    if (auto problem = CheckDns1035Label(*name, max_name_length)) reader.Fail("name", *problem);
  }
  if (auto ns = reader.String("namespace")) {
    meta.namespace_ = *ns;
    if (auto problem = CheckDns1123Label(*ns)) reader.Fail("namespace", *problem);
  }
  meta.uid = reader.String("uid").value_or("");
  meta.creation_timestamp = reader.String("creationTimestamp").value_or("");
  meta.resource_version = reader.String("resourceVersion").value_or("");
  meta.generation = reader.Int("generation", 0, INT64_MAX).value_or(0);
  for (std::string_view key : {"labels", "annotations"}) {
    const json* map = reader.Object(key);
    if (!map) continue;
    for (const auto& [k, v] : map->items()) {
      if (!v.is_string()) {
        reader.Fail(std::string(key) + "." + k, "must be a string");
        continue;
      }
      (key == "labels" ? meta.labels : meta.annotations)[k] = v.get<std::string>();
    }
  }
  // Everything else in metadata belongs to the API server (managedFields, ownerReferences, ...).
}

}  // namespace poolkeeper::api
