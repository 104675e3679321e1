// Reads one JSON object of user input field by field, collecting every problem with its full path
// (e.g. "spec.databases[1].poolSize: must be at least 1") instead of stopping at the first, and
// refusing fields it was never asked about, so a typo is an error rather than a silent default.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace poolkeeper::api {

class FieldReader {
 public:
  // `object` may be null (an absent optional section): every read then yields nothing.
  FieldReader(const nlohmann::json* object, std::string path, std::vector<FieldIssue>& issues);
  FieldReader(const FieldReader&) = delete;
  FieldReader& operator=(const FieldReader&) = delete;

  bool present() const { return object_ != nullptr; }
  std::string Path(std::string_view key) const;
  bool Has(std::string_view key) const;

  std::optional<int64_t> Int(std::string_view key, int64_t min, int64_t max, bool required = false);
  std::optional<std::string> String(std::string_view key, bool required = false);
  // A string or an integer (Kubernetes int-or-string), returned as text.
  std::optional<std::string> IntOrString(std::string_view key);
  // The raw value of a pass-through field of the given JSON type; nullptr when absent or mistyped.
  const nlohmann::json* Raw(std::string_view key, nlohmann::json::value_t type);
  const nlohmann::json* Object(std::string_view key, bool required = false);
  const nlohmann::json* Array(std::string_view key, bool required = false);

  void Fail(std::string_view key, std::string message);
  // Reports every field of the object that no read asked about.
  void RejectUnknown();

 private:
  const nlohmann::json* Get(std::string_view key, bool required);

  const nlohmann::json* object_;
  std::string path_;
  std::vector<FieldIssue>& issues_;
  std::set<std::string, std::less<>> seen_;
};

std::string_view JsonTypeName(const nlohmann::json& value);

}  // namespace poolkeeper::api
