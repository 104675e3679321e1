#include "main/observe.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/files.h"
#include "controller/server_observer.h"

namespace poolkeeper::cli {
namespace {

// A CA bundle in a file for libpq, removed when it goes out of scope.
class TempCaFile {
 public:
  ~TempCaFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  Result<std::string> Write(const std::string& pem) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "poolkeeper-ca-XXXXXX").string();
    int fd = mkstemp(pattern.data());
    if (fd < 0) return Fail(ErrorCode::kUnavailable, "creating a temporary CA file failed");
    close(fd);
    path_ = pattern;
    if (Status written = WriteFileAtomically(path_, pem, 0600); !written) {
      return std::unexpected(written.error());
    }
    return path_;
  }

 private:
  std::string path_;
};

const std::string* Key(const secrets::Secret& secret, const char* key) {
  auto it = secret.data.find(key);
  return it == secret.data.end() ? nullptr : &it->second;
}

}  // namespace

Status ObserveServers(manifests::Manifests& manifests, const ObserveEnv& env, std::ostream& out) {
  for (auto& server : manifests.servers) {
    const api::PostgresServerSpec& spec = server.spec;
    const std::string where = "PostgresServer " + server.name + ": ";
    postgres::Endpoint endpoint{.host = spec.host, .port = spec.port, .sslmode = spec.ssl_mode};
    std::optional<secrets::Secret> credentials;
    if (spec.credentials_secret_ref) {
      credentials = manifests.secrets.Find(spec.credentials_secret_ref->namespace_,
                                           spec.credentials_secret_ref->name);
    }
    if (credentials && Key(*credentials, "username") && Key(*credentials, "password")) {
      endpoint.user = *Key(*credentials, "username");
      endpoint.password = *Key(*credentials, "password");
    } else if (auto user = env.getenv("PGUSER")) {
      endpoint.user = *user;  // libpq takes the password from PGPASSWORD or ~/.pgpass
    } else {
      return Fail(ErrorCode::kInvalid,
                  where +
                      "no credentials: put the Secret of spec.credentialsSecretRef (keys "
                      "username, password) in the files, or set PGUSER and PGPASSWORD");
    }
    TempCaFile ca;
    if (spec.ca_secret_ref) {
      std::optional<secrets::Secret> secret =
          manifests.secrets.Find(spec.ca_secret_ref->namespace_, spec.ca_secret_ref->name);
      if (secret && Key(*secret, "ca.crt")) {
        auto path = ca.Write(*Key(*secret, "ca.crt"));
        if (!path) return std::unexpected(path.error());
        endpoint.sslrootcert = *path;
      } else if (auto file = env.getenv("PGSSLROOTCERT")) {
        endpoint.sslrootcert = *file;
      } else {
        return Fail(ErrorCode::kInvalid, where +
                                             "no CA: put the Secret of spec.caSecretRef (key "
                                             "ca.crt) in the files, or set PGSSLROOTCERT");
      }
    }
    auto seen = env.database.Observe(endpoint, {});
    if (!seen) return Fail(seen.error().code, where + seen.error().message);
    server.observed = controller::ToApiObservation(*seen, env.now);
    server.unreachable = false;
    out << "observed " << where << "max_connections " << seen->max_connections
        << ", superuser_reserved_connections " << seen->superuser_reserved_connections
        << ", reserved_connections " << seen->reserved_connections << ", " << seen->in_use_by_others
        << " connections in use, PostgreSQL " << seen->server_version << "\n";
  }
  return {};
}

}  // namespace poolkeeper::cli
