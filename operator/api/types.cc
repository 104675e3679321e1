#include <algorithm>
#include <cctype>

#include "api/connection_pool.h"

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

std::string ServerSpec::Key() const {
  std::string lowered = host;
  std::ranges::transform(lowered, lowered.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lowered + ":" + std::to_string(port);
}

}  // namespace poolkeeper::api
