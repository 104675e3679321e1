// authQuery mode in the rendered files and objects: auth_user and auth_query in pgbouncer.ini, a
// userlist with the auth user alone, and no application password in anything the operator writes.
#include <gtest/gtest.h>

#include "common/base64.h"
#include "pools.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace {

using testing::OrdersPasswords;
using testing::OrdersPlan;
using testing::OrdersPool;

api::ConnectionPool AuthQueryPool() {
  api::ConnectionPool pool = OrdersPool();
  pool.spec.auth_mode = api::AuthMode::kAuthQuery;
  return pool;
}

// What the operator passes in authQuery mode: the auth user's password alone. The application
// passwords are added here too, to show they are not copied even when at hand.
Passwords WithAuthUser() {
  Passwords passwords = OrdersPasswords();
  passwords[api::kAuthUser] = "auth-pw-9f3";
  return passwords;
}

TEST(AuthQueryRender, IniNamesTheAuthUserAndQuery) {
  const std::string ini = RenderIni(AuthQueryPool(), OrdersPlan());
  EXPECT_NE(ini.find("\nauth_user = poolkeeper_auth\n"), std::string::npos) << ini;
  EXPECT_NE(ini.find("\nauth_query = SELECT usename, passwd FROM poolkeeper.lookup($1)\n"),
            std::string::npos)
      << ini;
  EXPECT_NE(ini.find("\nauth_type = scram-sha-256\n"), std::string::npos);
  // auth_dbname is not used: 1.18 does not know it, and the lookup exists in every database.
  EXPECT_EQ(ini.find("auth_dbname"), std::string::npos);
}

TEST(AuthQueryRender, UserlistModeHasNoAuthKeys) {
  const std::string ini = RenderIni(OrdersPool(), OrdersPlan());
  EXPECT_EQ(ini.find("auth_user"), std::string::npos);
  EXPECT_EQ(ini.find("auth_query"), std::string::npos);
}

TEST(AuthQueryRender, UserlistHoldsOnlyTheAuthUser) {
  auto userlist = RenderUserlist(AuthQueryPool(), WithAuthUser());
  ASSERT_TRUE(userlist.has_value()) << userlist.error().message;
  EXPECT_EQ(*userlist, "\"poolkeeper_auth\" \"auth-pw-9f3\"\n");
}

TEST(AuthQueryRender, MissingAuthPasswordNamesTheFieldAndNoPassword) {
  auto userlist = RenderUserlist(AuthQueryPool(), OrdersPasswords());
  ASSERT_FALSE(userlist.has_value());
  EXPECT_EQ(userlist.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(userlist.error().fields.at(0).field, "spec.authentication");
  EXPECT_EQ(userlist.error().message.find("s3cret-orders"), std::string::npos);
}

TEST(AuthQueryRender, NoApplicationPasswordInAnyObject) {
  auto objects = BuildObjects(AuthQueryPool(), OrdersPlan(), WithAuthUser(), "auth@7");
  ASSERT_TRUE(objects.has_value()) << objects.error().message;
  std::string all;
  for (const auto& kind : kOwnedKinds) all += ((*objects).*kind.member).dump();
  all += objects->pod_template.dump();
  for (const auto& [user, password] : OrdersPasswords()) {
    EXPECT_EQ(all.find(password), std::string::npos) << user;
    // Not even base64-encoded in the Secret's data.
    EXPECT_EQ(all.find(EncodeBase64(password)), std::string::npos) << user;
  }
  EXPECT_NE(all.find(EncodeBase64("\"poolkeeper_auth\" \"auth-pw-9f3\"\n")), std::string::npos);
}

}  // namespace
}  // namespace poolkeeper::render
