// Helpers shared by the renderer's files; not part of the module's interface (render.h is).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/connection_pool.h"
#include "common/digest.h"

namespace poolkeeper::render::internal {

using poolkeeper::Sha256Hex;  // the renderer's hashes (hash.cc)

// A database or user name as a key of pgbouncer.ini: bare when it is only [A-Za-z0-9_.-] (what
// PgBouncer's ini parser reads as a key), else double-quoted with '"' doubled as PgBouncer's
// documentation describes. PgBouncer 1.18 rejects quoted keys outright, so names that would need
// quotes (e.g. with '@' or '$') must be refused by validation before they get here.
std::string IniName(std::string_view name);
// A value inside a [databases] connection string: bare when it is plain, else single-quoted with
// '\'' doubled. This is PgBouncer's own connstring rule (src/loader.c cstr_get_value), not
// libpq's: a backslash has no meaning there and must not be escaped.
std::string ConnValue(std::string_view value);

// pgbouncer before 1.23 treats SIGTERM as an immediate shutdown; from 1.23 SIGTERM waits for
// clients ("super safe shutdown").
bool SigtermDrains(api::PgBouncerVersion version);
// How long Kubernetes lets a stopping pod drain; see pod.cc for the rule.
int TerminationGracePeriodSeconds(const api::ConnectionPool& pool);

// Labels on every owned object, and the subset that selects the pool's pods.
nlohmann::json Labels(const api::ConnectionPool& pool);
nlohmann::json SelectorLabels(const api::ConnectionPool& pool);
// metadata {name, namespace, labels, ownerReferences when the pool has a uid}.
nlohmann::json Metadata(const api::ConnectionPool& pool, const std::string& name);

// A pooler pod without its name or its annotations: what every pod of this configuration is
// (render.h's PodInSlot names one; BuildObjects annotates it).
nlohmann::json BuildPodTemplate(const api::ConnectionPool& pool);

}  // namespace poolkeeper::render::internal
