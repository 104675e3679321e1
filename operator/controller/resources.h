// The product's resource types and the selector of what the operator owns. This is product
// knowledge, so it lives in the controller; kube knows only Kubernetes' own kinds.
#pragma once

#include <string>

#include "kube/client.h"
#include "render/render.h"

namespace poolkeeper::controller {

inline constexpr kube::ResourceType kConnectionPoolType{"poolkeeper.io", "v1alpha1",
                                                        "connectionpools", "ConnectionPool", true};
// Cluster-scoped: see api/postgres_server.h for why.
inline constexpr kube::ResourceType kPostgresServerType{"poolkeeper.io", "v1alpha1",
                                                        "postgresservers", "PostgresServer", false};

// Owned kinds are watched with this selector, the label render puts on everything it builds.
inline std::string ManagedBySelector() {
  return std::string(render::kManagedByLabel) + "=" + render::kManagedByValue;
}

}  // namespace poolkeeper::controller
