#include "api/names.h"

#include <algorithm>
#include <cctype>

namespace poolkeeper::api {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::optional<std::string> CheckLabel(std::string_view name, size_t max_length,
                                      bool must_start_with_letter, std::string_view what) {
  if (name.empty()) return "must not be empty";
  if (name.size() > max_length) {
    return "must be at most " + std::to_string(max_length) + " characters";
  }
  bool chars_ok = std::ranges::all_of(name, [](char c) { return IsLowerAlnum(c) || c == '-'; });
  bool ends_ok = IsLowerAlnum(name.front()) && IsLowerAlnum(name.back());
  bool start_ok = !must_start_with_letter || (name.front() >= 'a' && name.front() <= 'z');
  if (!chars_ok || !ends_ok || !start_ok) {
    return "must be " + std::string(what) + ": lower-case letters, digits and '-', starting with " +
           (must_start_with_letter ? "a letter" : "a letter or digit") +
           " and ending with a letter or digit";
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> CheckDns1035Label(std::string_view name, size_t max_length) {
  return CheckLabel(name, max_length, true, "a DNS-1035 label");
}

std::optional<std::string> CheckDns1123Label(std::string_view name) {
  return CheckLabel(name, 63, false, "a DNS-1123 label");
}

std::optional<std::string> CheckDns1123Subdomain(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 253) return "must be at most 253 characters";
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view part =
        name.substr(start, dot == std::string_view::npos ? name.npos : dot - start);
    if (CheckLabel(part, 63, false, "a DNS-1123 subdomain")) {
      return "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each part "
             "starting and ending with a letter or digit";
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return std::nullopt;
}

std::optional<std::string> CheckSecretKey(std::string_view key) {
  if (key.empty()) return "must not be empty";
  if (key.size() > 253) return "must be at most 253 characters";
  bool ok = std::ranges::all_of(
      key, [](char c) { return IsAlnum(c) || c == '-' || c == '.' || c == '_'; });
  if (!ok) return "must consist of letters, digits, '-', '.' and '_'";
  return std::nullopt;
}

std::optional<std::string> CheckPgIdentifier(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 63) return "must be at most 63 characters (PostgreSQL truncates longer names)";
  bool ok = std::ranges::all_of(
      name, [](char c) { return IsAlnum(c) || c == '_' || c == '.' || c == '-'; });
  if (!ok) {
    return "may contain only letters, digits and '_', '.', '-' (anything else could inject a "
           "setting into pgbouncer.ini, or stops PgBouncer from loading it)";
  }
  if (name.front() == '-') return "must not start with '-'";
  return std::nullopt;
}

std::optional<std::string> CheckHost(std::string_view host) {
  if (host.empty()) return "must not be empty";
  if (host.size() > 253) return "must be at most 253 characters";
  bool ok = std::ranges::all_of(
      host, [](char c) { return IsAlnum(c) || c == '.' || c == '-' || c == ':' || c == '_'; });
  if (!ok) return "must be a host name or an IP address (letters, digits, '.', '-', ':', '_')";
  if (host.front() == '-') return "must not start with '-'";
  return std::nullopt;
}

}  // namespace poolkeeper::api
