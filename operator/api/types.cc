#include <algorithm>
#include <cctype>

#include "api/connection_pool.h"
#include "api/postgres_server.h"

namespace poolkeeper::api {

std::string_view PoolModeName(PoolMode mode) {
  switch (mode) {
    case PoolMode::kSession:
      return "session";
    case PoolMode::kTransaction:
      return "transaction";
    case PoolMode::kStatement:
      return "statement";
  }
  return "transaction";
}

std::string_view AuthModeName(AuthMode mode) {
  return mode == AuthMode::kAuthQuery ? "authQuery" : "userlist";
}

std::string ServerSpec::Key() const {
  return budget_key.empty() ? EndpointKey(host, port) : budget_key;
}

std::string EndpointKey(std::string_view host, int port) {
  std::string lowered(host);
  if (lowered.size() > 1 && lowered.back() == '.') lowered.pop_back();
  std::ranges::transform(lowered, lowered.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lowered + ":" + std::to_string(port);
}

std::string ServerRefKey(std::string_view name) { return "postgresserver/" + std::string(name); }

}  // namespace poolkeeper::api
