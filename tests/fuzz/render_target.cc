// Fuzz target "render": pgbouncer.ini and userlist.txt of every pool that validates must parse
// back to the pool (targets.h). The parsers below read the files the way PgBouncer does (libusual's
// ini reader: a line is a comment, a [section] or `key = value`, a key is [A-Za-z0-9_.*-]+; a
// connection string is `name=value` words, a value bare or single-quoted with '' doubled; the auth
// file is `"user" "password"` with "" doubled), strictly enough that anything else is a finding.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api/pgbouncer_settings.h"
#include "budget/servers.h"
#include "manifests/manifests.h"
#include "render/render.h"
#include "secrets/secrets.h"
#include "targets.h"
#include "yaml/yaml.h"

namespace poolkeeper::fuzz {
namespace {

std::vector<std::string_view> Lines(std::string_view text, std::string_view what) {
  if (!text.empty() && text.back() != '\n') Violated(what, "does not end with a newline");
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    text.remove_prefix(end + 1);
  }
  return lines;
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '*' || c == '-';
}

bool HasControl(std::string_view text) {
  return std::ranges::any_of(text, [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// One connection string ("host=h port=5432 dbname='a b'") as PgBouncer's cstr_get_pair reads it.
std::map<std::string, std::string> ParseConnString(std::string_view text, std::string_view line) {
  std::map<std::string, std::string> values;
  while (!text.empty()) {
    const size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) Violated("[databases] word without =", line);
    const std::string key(text.substr(0, eq));
    if (!std::ranges::all_of(key, IsKeyChar)) Violated("[databases] odd key", line);
    text.remove_prefix(eq + 1);
    std::string value;
    if (!text.empty() && text.front() == '\'') {
      size_t i = 1;
      for (;; ++i) {
        if (i >= text.size()) Violated("[databases] unterminated quote", line);
        if (text[i] == '\'') {
          if (i + 1 < text.size() && text[i + 1] == '\'') {
            value.push_back('\'');
            ++i;
            continue;
          }
          break;
        }
        value.push_back(text[i]);
      }
      text.remove_prefix(i + 1);
    } else {
      const size_t end = std::min(text.find(' '), text.size());
      value = std::string(text.substr(0, end));
      if (value.empty() || value.find('\'') != std::string::npos) {
        Violated("[databases] bad bare value", line);
      }
      text.remove_prefix(end);
    }
    if (!values.emplace(key, value).second) Violated("[databases] key given twice", line);
    if (!text.empty()) {
      if (text.front() != ' ' || text.size() == 1 || text[1] == ' ') {
        Violated("[databases] words not separated by one space", line);
      }
      text.remove_prefix(1);
    }
  }
  return values;
}

using Section = std::map<std::string, std::string>;

std::map<std::string, Section> ParseIni(std::string_view ini) {
  std::map<std::string, Section> sections;
  Section* current = nullptr;
  for (std::string_view line : Lines(ini, "pgbouncer.ini")) {
    if (HasControl(line)) Violated("pgbouncer.ini: a control character", line);
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[') {
      const std::string name(line);
      if (name != "[databases]" && name != "[users]" && name != "[pgbouncer]") {
        Violated("pgbouncer.ini: unexpected section", line);
      }
      if (sections.contains(name)) Violated("pgbouncer.ini: section twice", line);
      current = &sections[name];
      continue;
    }
    if (current == nullptr) Violated("pgbouncer.ini: a setting before any section", line);
    const size_t key_end = line.find(" =");
    if (key_end == std::string_view::npos || key_end == 0) {
      Violated("pgbouncer.ini: neither comment, section nor `key = value`", line);
    }
    const std::string key(line.substr(0, key_end));
    if (!std::ranges::all_of(key, IsKeyChar))
      Violated("pgbouncer.ini: a key PgBouncer cannot read", line);
    std::string_view value = line.substr(key_end + 2);
    if (!value.empty()) {
      if (value.front() != ' ' || value.size() == 1) Violated("pgbouncer.ini: `key = value`", line);
      value.remove_prefix(1);
      // PgBouncer strips surrounding whitespace: a value that had it would not read back.
      if (value.front() == ' ' || value.back() == ' ')
        Violated("pgbouncer.ini: padded value", line);
    }
    if (!current->emplace(key, value).second) Violated("pgbouncer.ini: key given twice", line);
  }
  return sections;
}

void CheckIni(const api::ConnectionPool& pool, const std::string& ini) {
  auto sections = ParseIni(ini);
  const auto& spec = pool.spec;
  std::set<std::string> database_keys;
  for (const auto& [key, connstring] : sections["[databases]"]) {
    database_keys.insert(key);
    auto values = ParseConnString(connstring, connstring);
    auto db = std::ranges::find(spec.databases, key, &api::DatabaseSpec::name);
    if (db == spec.databases.end()) Violated("[databases]: a database not in the spec", key);
    if (values["host"] != spec.server.host) Violated("[databases]: host reads back changed", ini);
    if (values["port"] != std::to_string(spec.server.port)) Violated("[databases]: port", ini);
    if (values["dbname"] != (db->dbname.empty() ? db->name : db->dbname)) {
      Violated("[databases]: dbname reads back changed", ini);
    }
  }
  if (database_keys.size() != spec.databases.size()) {
    Violated("[databases]: not one line per database", ini);
  }
  for (const auto& [key, value] : sections["[users]"]) {
    if (std::ranges::find(spec.users, key, &api::UserSpec::name) == spec.users.end()) {
      Violated("[users]: a user not in the spec", key);
    }
    (void)ParseConnString(value, value);
  }
  for (const auto& [key, value] : sections["[pgbouncer]"]) {
    if (api::FindSetting(key) == nullptr) Violated("[pgbouncer]: not a PgBouncer setting", key);
    if (auto parameter = spec.pooler.parameters.find(key);
        parameter != spec.pooler.parameters.end() && parameter->second != value) {
      Violated("[pgbouncer]: a parameter reads back changed", key);
    }
  }
}

// `"word"` with "" for a quote; returns the word and what follows it.
std::pair<std::string, std::string_view> Unquote(std::string_view text, std::string_view line) {
  if (text.empty() || text.front() != '"') Violated("userlist: field not quoted", line);
  std::string word;
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] != '"') {
      word.push_back(text[i]);
    } else if (i + 1 < text.size() && text[i + 1] == '"') {
      word.push_back('"');
      ++i;
    } else {
      return {word, text.substr(i + 1)};
    }
  }
  Violated("userlist: unterminated quote", line);
}

void CheckUserlist(const api::ConnectionPool& pool, const render::Passwords& passwords,
                   const std::string& userlist) {
  std::set<std::string> seen;
  for (std::string_view line : Lines(userlist, "userlist.txt")) {
    auto [user, rest] = Unquote(line, line);
    if (rest.empty() || rest.front() != ' ') Violated("userlist: fields not separated", line);
    auto [password, end] = Unquote(rest.substr(1), line);
    if (!end.empty()) Violated("userlist: more than two fields", line);
    if (!seen.insert(user).second) Violated("userlist: a user twice", line);
    auto expected = passwords.find(user);
    if (expected == passwords.end()) Violated("userlist: a user without a password", line);
    if (expected->second != password) Violated("userlist: a password reads back changed", user);
    if (password.size() >= render::kMaxUserlistPassword) Violated("userlist: too long", user);
  }
  std::set<std::string> users;
  for (const auto& user : pool.spec.users) users.insert(user.name);
  if (seen != users) Violated("userlist: not exactly one line per user", userlist);
}

// Passwords cut from the raw input: every byte value reaches RenderUserlist, which must either
// refuse it or carry it so that it reads back.
render::Passwords PasswordsFrom(const api::ConnectionPool& pool, std::string_view raw) {
  render::Passwords passwords;
  const size_t users = pool.spec.users.size();  // validation refuses a pool without users
  for (size_t i = 0; i < users; ++i) {
    passwords[pool.spec.users[i].name] =
        std::string(raw.substr(i * raw.size() / users, raw.size() / users + 1));
  }
  return passwords;
}

void RenderPool(const api::ConnectionPool& pool, const budget::PoolPlan& plan,
                const secrets::SecretMap& secrets, std::string_view raw) {
  CheckIni(pool, render::RenderIni(pool, plan));
  if (auto resolved = secrets::ResolvePasswords(pool, secrets)) {
    if (auto userlist = render::RenderUserlist(pool, resolved->passwords)) {
      CheckUserlist(pool, resolved->passwords, *userlist);
    }
    if (auto objects = render::BuildObjects(pool, plan, resolved->passwords, resolved->revision)) {
      for (const auto& kind : render::kOwnedKinds) {
        const nlohmann::json& object = (*objects).*kind.member;
        if (object.is_null()) continue;
        auto again = yaml::ParseYamlDocuments(yaml::ToYaml(object), "rendered.yaml");
        if (!again || again->size() != 1 || (*again)[0] != object) {
          Violated("rendered object does not read back from its YAML", kind.kind);
        }
      }
    }
  }
  const render::Passwords cut = PasswordsFrom(pool, raw);
  if (auto userlist = render::RenderUserlist(pool, cut)) CheckUserlist(pool, cut, *userlist);
}

}  // namespace

void Render(std::span<const uint8_t> data) {
  const std::string text(data.begin(), data.end());
  auto manifests = manifests::LoadManifests({{"fuzz.yaml", text}});
  if (!manifests) return;
  const budget::ServerDirectory directory(manifests->servers);
  const budget::Plan plan = budget::PlanOnServers(manifests->pools, directory);
  for (size_t i = 0; i < manifests->pools.size(); ++i) {
    RenderPool(directory.Place(manifests->pools[i]).pool, plan.pools[i], manifests->secrets, text);
  }
}

}  // namespace poolkeeper::fuzz
