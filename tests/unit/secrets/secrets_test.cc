// Secrets: decoding one without ever echoing a value, and resolving a pool's passwords with errors
// that name the field to fix.
#include "secrets/secrets.h"

#include <gtest/gtest.h>

namespace poolkeeper::secrets {
namespace {

using nlohmann::json;

TEST(ParseSecret, DecodesDataAndTakesStringDataAsIs) {
  auto secret = ParseSecret(
      json{{"metadata", {{"name", "creds"}, {"namespace", "shop"}, {"resourceVersion", "7"}}},
           {"data", {{"password", "czNjcjN0"}}},
           {"stringData", {{"user", "app"}}}});
  ASSERT_TRUE(secret) << secret.error().message;
  EXPECT_EQ(secret->namespace_, "shop");
  EXPECT_EQ(secret->resource_version, "7");
  EXPECT_EQ(secret->data.at("password"), "s3cr3t");
  EXPECT_EQ(secret->data.at("user"), "app");
}

TEST(ParseSecret, NamesTheBadKeyAndNeverEchoesItsValue) {
  auto secret = ParseSecret(json{{"metadata", {{"name", "creds"}}},
                                 {"data", {{"password", "not base64 hunter2!"}}},
                                 {"stringData", {{"pin", 1234}}}});
  ASSERT_FALSE(secret);
  EXPECT_NE(secret.error().message.find("data.password"), std::string::npos);
  EXPECT_NE(secret.error().message.find("stringData.pin"), std::string::npos);
  EXPECT_EQ(secret.error().message.find("hunter2"), std::string::npos);
  EXPECT_EQ(secret.error().message.find("1234"), std::string::npos);
}

api::ConnectionPool PoolWithUsers() {
  api::ConnectionPool pool;
  pool.metadata.namespace_ = "shop";
  pool.spec.users = {{.name = "app", .password_secret_ref = {.name = "app-creds"}},
                     {.name = "report", .password_secret_ref = {.name = "ro-creds", .key = "pw"}}};
  return pool;
}

TEST(ResolvePasswords, ReadsEachUsersKeyAndARevisionOfEverySecret) {
  SecretMap secrets;
  secrets.Put({"shop", "app-creds", "3", {{"password", "a"}}});
  secrets.Put({"shop", "ro-creds", "9", {{"pw", "b"}}});
  secrets.Put({"other", "app-creds", "1", {{"password", "not this namespace"}}});
  auto resolved = ResolvePasswords(PoolWithUsers(), secrets);
  ASSERT_TRUE(resolved) << resolved.error().message;
  EXPECT_EQ(resolved->passwords,
            (std::map<std::string, std::string>{{"app", "a"}, {"report", "b"}}));
  EXPECT_EQ(resolved->revision, "app-creds@3,ro-creds@9");
}

TEST(ResolvePasswords, AMissingSecretOrKeyNamesTheFieldToFix) {
  struct Case {
    std::vector<Secret> present;
    std::string field;
  };
  const Case cases[] = {
      {{{"shop", "ro-creds", "1", {{"pw", "b"}}}}, "spec.users[0].passwordSecretRef.name"},
      {{{"shop", "app-creds", "1", {{"password", "a"}}}, {"shop", "ro-creds", "1", {{"x", "b"}}}},
       "spec.users[1].passwordSecretRef.key"},
  };
  for (const auto& c : cases) {
    SecretMap secrets;
    for (const auto& secret : c.present) secrets.Put(secret);
    auto resolved = ResolvePasswords(PoolWithUsers(), secrets);
    ASSERT_FALSE(resolved) << c.field;
    EXPECT_EQ(resolved.error().code, ErrorCode::kNotFound);
    EXPECT_NE(resolved.error().message.find(c.field), std::string::npos)
        << resolved.error().message;
  }
}

}  // namespace
}  // namespace poolkeeper::secrets
