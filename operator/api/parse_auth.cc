#include "api/parse_auth.h"

#include <string>

namespace poolkeeper::api {

void ReadAuthentication(FieldReader& spec, AuthMode& mode, std::vector<FieldIssue>& issues) {
  FieldReader reader(spec.Object("authentication"), spec.Path("authentication"), issues);
  if (auto text = reader.String("mode")) {
    if (*text == "userlist") {
      mode = AuthMode::kUserlist;
    } else if (*text == "authQuery") {
      mode = AuthMode::kAuthQuery;
    } else {
      reader.Fail("mode", "must be userlist or authQuery, not \"" + *text + "\"");
    }
  }
  reader.RejectUnknown();
}

void CheckAuthQuery(const ConnectionPool& pool, std::vector<FieldIssue>& issues) {
  const ConnectionPoolSpec& spec = pool.spec;
  if (spec.auth_mode != AuthMode::kAuthQuery) return;
  if (spec.server_ref.empty()) {
    issues.push_back({"spec.authentication.mode",
                      "authQuery needs spec.serverRef: the operator sets the lookup up on a "
                      "PostgresServer with the admin credentials of its credentialsSecretRef"});
  }
  for (size_t i = 0; i < spec.databases.size(); ++i) {
    if (!pool.MaxDbConnections(spec.databases[i])) {
      issues.push_back({"spec.databases[" + std::to_string(i) + "].maxDbConnections",
                        "required in authQuery mode (here or as spec.pooler.maxDbConnections): "
                        "any role that may log in gets a pool of its own, so only this cap "
                        "bounds the database's server connections"});
    }
  }
}

}  // namespace poolkeeper::api
