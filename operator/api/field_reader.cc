#include "api/field_reader.h"

namespace poolkeeper::api {

using nlohmann::json;

std::string_view JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_float:
      return "a decimal number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    default:
      return "an unsupported value";
  }
}

FieldReader::FieldReader(const json* object, std::string path, std::vector<FieldIssue>& issues)
    : object_(object), path_(std::move(path)), issues_(issues) {
  if (object_ && object_->is_null()) object_ = nullptr;
  if (object_ && !object_->is_object()) {
    issues_.push_back({path_, "must be an object, not " + std::string(JsonTypeName(*object_))});
    object_ = nullptr;
  }
}

std::string FieldReader::Path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool FieldReader::Has(std::string_view key) const {
  if (!object_) return false;
  auto it = object_->find(key);
  return it != object_->end() && !it->is_null();
}

void FieldReader::Fail(std::string_view key, std::string message) {
  issues_.push_back({Path(key), std::move(message)});
}

const json* FieldReader::Get(std::string_view key, bool required) {
  seen_.emplace(key);
  if (object_) {
    auto it = object_->find(key);
    if (it != object_->end() && !it->is_null()) return &*it;
  }
  if (required) Fail(key, "required");
  return nullptr;
}

std::optional<int64_t> FieldReader::Int(std::string_view key, int64_t min, int64_t max,
                                        bool required) {
  const json* value = Get(key, required);
  if (!value) return std::nullopt;
  if (!value->is_number_integer()) {
    Fail(key, "must be an integer, not " + std::string(JsonTypeName(*value)));
    return std::nullopt;
  }
  if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(max)) {
    Fail(key, "must be at most " + std::to_string(max));
    return std::nullopt;
  }
  int64_t number = value->get<int64_t>();
  if (number < min) {
    Fail(key, "must be at least " + std::to_string(min));
    return std::nullopt;
  }
  if (number > max) {
    Fail(key, "must be at most " + std::to_string(max));
    return std::nullopt;
  }
  return number;
}

std::optional<std::string> FieldReader::String(std::string_view key, bool required) {
  const json* value = Get(key, required);
  if (!value) return std::nullopt;
  if (!value->is_string()) {
    Fail(key, "must be a string, not " + std::string(JsonTypeName(*value)));
    return std::nullopt;
  }
  return value->get<std::string>();
}

std::optional<std::string> FieldReader::IntOrString(std::string_view key) {
  const json* value = Get(key, false);
  if (!value) return std::nullopt;
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_integer()) return std::to_string(value->get<int64_t>());
  Fail(key, "must be an integer or a string, not " + std::string(JsonTypeName(*value)));
  return std::nullopt;
}

const json* FieldReader::Raw(std::string_view key, json::value_t type) {
  const json* value = Get(key, false);
  if (!value) return nullptr;
  if (value->type() != type) {
    Fail(key, "must be " + std::string(JsonTypeName(json(type))) + ", not " +
                  std::string(JsonTypeName(*value)));
    return nullptr;
  }
  return value;
}

const json* FieldReader::Object(std::string_view key, bool required) {
  const json* value = Get(key, required);
  if (value && !value->is_object()) {
    Fail(key, "must be an object, not " + std::string(JsonTypeName(*value)));
    return nullptr;
  }
  return value;
}

const json* FieldReader::Array(std::string_view key, bool required) {
  const json* value = Get(key, required);
  if (value && !value->is_array()) {
    Fail(key, "must be a list, not " + std::string(JsonTypeName(*value)));
    return nullptr;
  }
  return value;
}

void FieldReader::RejectUnknown() {
  if (!object_) return;
  for (const auto& [key, value] : object_->items()) {
    if (!seen_.contains(key)) Fail(key, "unknown field");
  }
}

}  // namespace poolkeeper::api
