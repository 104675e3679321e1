// userlist.txt: the passwords PgBouncer needs to authenticate clients with SCRAM and to log in to
// the server (it cannot log in with a verifier it did not get from the server). No message here
// ever includes a password, only the user and the Secret reference it came from.
#include <algorithm>
#include <vector>

#include "render/render.h"

namespace poolkeeper::render {
namespace {

// PgBouncer's auth file quoting: a double-quoted word, '"' doubled inside.
std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// The line of one user, or why its password cannot be in the file.
Result<std::string> UserLine(const std::string& user, const std::string& field,
                             const std::string& source, const Passwords& passwords) {
  auto found = passwords.find(user);
  if (found == passwords.end()) {
    return FieldFail(ErrorCode::kNotFound, field,
                     "no password for user \"" + user + "\" (" + source + " not found)");
  }
  const std::string& password = found->second;
  if (password.empty()) {
    return FieldFail(ErrorCode::kInvalid, field,
                     "the password of user \"" + user + "\" in " + source + " is empty");
  }
  if (password.find_first_of(std::string_view("\n\r\0", 3)) != std::string::npos) {
    return FieldFail(ErrorCode::kInvalid, field,
                     "the password of user \"" + user + "\" in " + source +
                         " contains a line break or a NUL byte, which the userlist cannot carry");
  }
  // PgBouncer (1.18 to 1.24 at least) reads auth-file fields into 2048-byte buffers: at a longer
  // one it stops reading the file, and every user after it fails to log in.
  const std::string quoted = Quoted(password);
  if (quoted.size() - 2 >= kMaxUserlistPassword) {
    return FieldFail(ErrorCode::kInvalid, field,
                     "the password of user \"" + user + "\" in " + source + " is " +
                         std::to_string(quoted.size() - 2) +
                         " bytes in the userlist (quotes doubled); " + "PgBouncer reads at most " +
                         std::to_string(kMaxUserlistPassword - 1));
  }
  return Quoted(user) + " " + quoted + "\n";
}

}  // namespace

namespace {

// The pooler agent's line, when the pool's pods run the agent; else "".
Result<std::string> AgentLine(const api::ConnectionPool& pool, const Passwords& passwords) {
  if (pool.spec.pooler.agent_image.empty()) return std::string();
  return UserLine(api::kAgentUser, "spec.pooler",
                  "the pooler agent's password the operator generates", passwords);
}

}  // namespace

Result<std::string> RenderUserlist(const api::ConnectionPool& pool, const Passwords& passwords) {
  auto agent = AgentLine(pool, passwords);
  if (!agent) return std::unexpected(agent.error());
  if (pool.spec.auth_mode == api::AuthMode::kAuthQuery) {
    // Only the auth user: no application password is ever copied in this mode.
    auto line =
        UserLine(api::kAuthUser, "spec.authentication",
                 "the auth user's Secret the operator keeps for the PostgresServer", passwords);
    if (!line) return std::unexpected(line.error());
    return *line + *agent;
  }
  std::vector<std::pair<std::string, std::string>> lines;  // user name -> line, for sorting
  const auto& users = pool.spec.users;
  for (size_t i = 0; i < users.size(); ++i) {
    const api::UserSpec& user = users[i];
    std::string field = "spec.users[" + std::to_string(i) + "].passwordSecretRef";
    std::string source = "Secret \"" + user.password_secret_ref.name + "\" key \"" +
                         user.password_secret_ref.key + "\"";
    auto line = UserLine(user.name, field, source, passwords);
    if (!line) return std::unexpected(line.error());
    lines.emplace_back(user.name, std::move(*line));
  }
  if (!agent->empty()) lines.emplace_back(api::kAgentUser, std::move(*agent));
  std::ranges::sort(lines);
  std::string out;
  for (const auto& [name, line] : lines) out += line;
  return out;
}

}  // namespace poolkeeper::render
