// From user input to a validated ConnectionPool with every default applied. This is the one door:
// the CLI and the operator both come through it, so both refuse exactly the same things, and every
// error names its field (`spec.databases[1].name: ...`).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "api/connection_pool.h"
#include "common/error.h"

namespace poolkeeper::api {

// The image used when spec.pooler.image is unset, and the PgBouncer version it runs.
inline constexpr char kDefaultImage[] = "ghcr.io/cloudnative-pg/pgbouncer:1.24.1";
inline constexpr PgBouncerVersion kDefaultImageVersion{1, 24};
// The PgBouncer releases whose settings poolkeeper knows.
inline constexpr PgBouncerVersion kOldestSupportedVersion{1, 18};
inline constexpr PgBouncerVersion kNewestSupportedVersion{1, 25};

// What an unset spec.pooler.image means: the operator's --default-pgbouncer-image (and version),
// else kDefaultImage.
struct ParseDefaults {
  std::string image = kDefaultImage;
  PgBouncerVersion image_version = kDefaultImageVersion;
  std::string agent_image;  // --agent-image: every pool's pods get the agent; empty: none
};
// From the flags: an empty image keeps the built-in default; an empty version is read from the
// image's tag. Errors name the flag.
Result<ParseDefaults> MakeParseDefaults(const std::string& image, const std::string& version);

// Parses a ConnectionPool object (apiVersion, kind, metadata, spec; status is ignored).
// Fails with kInvalid listing every problem found.
Result<ConnectionPool> ParseConnectionPool(const nlohmann::json& object,
                                           const ParseDefaults& defaults = {});

// "1.18", "1.18.0", "v1.24.1-p1" -> {1, 18} / {1, 24}; nullopt when no version is found.
std::optional<PgBouncerVersion> ParsePgBouncerVersion(std::string_view text);
// The version named by an image tag ("repo/pgbouncer:1.24.1" -> 1.24), or nullopt.
std::optional<PgBouncerVersion> VersionFromImage(std::string_view image);

}  // namespace poolkeeper::api
