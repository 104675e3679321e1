// Reading pieces that both resources share (ConnectionPool's inline server, PostgresServer), so the
// two refuse exactly the same overheads and bounds. Internal to the api module.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "api/connection_pool.h"
#include "api/field_reader.h"

namespace poolkeeper::api {

// Upper bounds keep the arithmetic far from overflow; PostgreSQL itself caps max_connections at
// 2^18 - 1 backends.
inline constexpr int64_t kMaxBackends = 262143;

// `overhead`: a count, or a percentage like "20%".
void ReadOverhead(FieldReader& reader, Overhead& overhead);

// A namespaced object's metadata: name (a DNS-1035 label of at most `max_name_length`),
// namespace, and the fields the API server sets; labels and annotations must be strings.
void ReadMetadata(const nlohmann::json& object, ObjectMeta& meta, std::vector<FieldIssue>& issues,
                  size_t max_name_length);

}  // namespace poolkeeper::api
