// What a name may look like wherever it ends up: in Kubernetes object names, in pgbouncer.ini keys
// and connection strings, in the userlist. Each check returns the problem, or nullopt when fine.
// The rule is to refuse rather than escape into something surprising: only characters that cannot
// start a new line, setting, comment or quoted word pass.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace poolkeeper::api {

// DNS-1035 label (Service names): [a-z]([-a-z0-9]*[a-z0-9])?, at most max_length.
std::optional<std::string> CheckDns1035Label(std::string_view name, size_t max_length = 63);
// DNS-1123 label (namespaces).
std::optional<std::string> CheckDns1123Label(std::string_view name);
// DNS-1123 subdomain (Secret names).
std::optional<std::string> CheckDns1123Subdomain(std::string_view name);
// A Secret data key: [-._a-zA-Z0-9]+.
std::optional<std::string> CheckSecretKey(std::string_view key);

// A database or user name as pgbouncer.ini and the userlist carry it: letters, digits and `_ . -`,
// not starting with '-', at most 63 bytes (PostgreSQL's NAMEDATALEN - 1). That is exactly what
// PgBouncer 1.18's ini parser reads as a bare key; it stops loading at a quoted one, so nothing
// else can be made safe by quoting.
std::optional<std::string> CheckPgIdentifier(std::string_view name);
// A host name or IP address for a connection string.
std::optional<std::string> CheckHost(std::string_view host);

}  // namespace poolkeeper::api
