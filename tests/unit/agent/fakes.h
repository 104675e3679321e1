// In-memory stand-ins for the agent's files and PgBouncer's admin console.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/files.h"
#include "postgres/admin_console.h"

namespace poolkeeper::agent {

class FakeFiles : public AgentFiles {
 public:
  Result<std::string> Read(const std::string& path) override {
    auto found = files.find(path);
    if (found == files.end()) return Fail(ErrorCode::kNotFound, path + ": no such file");
    return found->second;
  }
  Result<std::string> LinkTarget(const std::string& path) override {
    auto found = links.find(path);
    if (found == links.end()) return Fail(ErrorCode::kNotFound, path + ": not a symlink");
    return found->second;
  }
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> links;
};

// Records every command; answers SHOW CONFIG from `config` (key -> value, changeable), other SHOWs
// from `tables`, and fails while `down` or for a command in `refuse` (command -> message).
struct FakePgBouncer {
  std::mutex mutex;
  std::vector<std::string> commands;
  std::vector<std::string> passwords;  // what each session logged in with
  std::map<std::string, std::pair<std::string, bool>> config;
  std::map<std::string, postgres::ConsoleTable> tables;
  std::map<std::string, std::string> refuse;
  bool down = false;

  std::vector<std::string> Commands() {
    std::lock_guard guard(mutex);
    return commands;
  }
};

class FakeConsole : public postgres::AdminConsole {
 public:
  explicit FakeConsole(FakePgBouncer& bouncer) : bouncer_(bouncer) {}
  Result<std::vector<postgres::ConsoleTable>> Run(
      const std::vector<std::string>& commands) override {
    std::lock_guard guard(bouncer_.mutex);
    if (bouncer_.down) return Fail(ErrorCode::kUnavailable, "console: connection refused");
    std::vector<postgres::ConsoleTable> out;
    for (const std::string& command : commands) {
      bouncer_.commands.push_back(command);
      if (auto refused = bouncer_.refuse.find(command); refused != bouncer_.refuse.end()) {
        return Fail(ErrorCode::kInternal, "console: " + command + ": " + refused->second);
      }
      if (command == "SHOW CONFIG") {
        postgres::ConsoleTable table{{"key", "value", "default", "changeable"}, {}};
        for (const auto& [key, value] : bouncer_.config) {
          table.rows.push_back({key, value.first, "", value.second ? "yes" : "no"});
        }
        out.push_back(table);
      } else {
        out.push_back(bouncer_.tables[command]);
      }
    }
    return out;
  }

 private:
  FakePgBouncer& bouncer_;
};

}  // namespace poolkeeper::agent
