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

std::map<std::string, std::string> Labelled() {
  return {{std::string(kExposeLabel), std::string(kExposeValue)}};
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
  secrets.Put({"shop", "app-creds", "3", {{"password", "a"}}, Labelled()});
  secrets.Put({"shop", "ro-creds", "9", {{"pw", "b"}}, Labelled()});
  secrets.Put({"other", "app-creds", "1", {{"password", "not this namespace"}}, Labelled()});
  auto resolved = ResolvePasswords(PoolWithUsers(), secrets);
  ASSERT_TRUE(resolved) << resolved.error().message;
  EXPECT_EQ(resolved->passwords,
            (std::map<std::string, std::string>{{"app", "a"}, {"report", "b"}}));
  EXPECT_EQ(resolved->revision, "app-creds@3,ro-creds@9");
}

TEST(ResolvePasswords, AuthQueryModeReadsNoApplicationPassword) {
  // The Secrets exist and are exposed: in authQuery mode they are still not read, and a missing
  // one is no error (a passwordSecretRef is ignored there).
  SecretMap secrets;
  secrets.Put({"shop", "app-creds", "3", {{"password", "a"}}, Labelled()});
  api::ConnectionPool pool = PoolWithUsers();
  pool.spec.auth_mode = api::AuthMode::kAuthQuery;
  auto resolved = ResolvePasswords(pool, secrets);
  ASSERT_TRUE(resolved) << resolved.error().message;
  EXPECT_TRUE(resolved->passwords.empty());
  EXPECT_EQ(resolved->revision, "");
}

TEST(ResolvePasswords, AMissingSecretOrKeyNamesTheFieldToFix) {
  struct Case {
    std::vector<Secret> present;
    std::string field;
  };
  const Case cases[] = {
      {{{"shop", "ro-creds", "1", {{"pw", "b"}}, Labelled()}},
       "spec.users[0].passwordSecretRef.name"},
      {{{"shop", "app-creds", "1", {{"password", "a"}}, Labelled()},
        {"shop", "ro-creds", "1", {{"x", "b"}}, Labelled()}},
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

TEST(ParseSecret, ReadsTheLabelThatExposesItToPools) {
  json object = {{"metadata", {{"name", "creds"}, {"labels", {{"app", "x"}}}}}};
  EXPECT_FALSE(Exposed(*ParseSecret(object)));
  object["metadata"]["labels"]["poolkeeper.io/expose-to-pools"] = "false";
  EXPECT_FALSE(Exposed(*ParseSecret(object)));
  object["metadata"]["labels"]["poolkeeper.io/expose-to-pools"] = "true";
  EXPECT_TRUE(Exposed(*ParseSecret(object)));
  EXPECT_EQ(ExposeSelector(), "poolkeeper.io/expose-to-pools=true");
}

// Issue 12: a pool could name any Secret of its namespace and have its value copied into the
// userlist. An unlabelled Secret is refused before its data is looked at: the error names the
// field, the Secret and the label, never the value, and is not kNotFound (the operator reports a
// reason of its own).
TEST(ResolvePasswords, AnUnlabelledSecretIsRefusedNamingTheSecretAndTheLabel) {
  SecretMap secrets;
  secrets.Put({"shop", "app-creds", "3", {{"password", "a"}}, Labelled()});
  secrets.Put({"shop", "ro-creds", "9", {{"pw", "payments-api-key"}}, {{"team", "payments"}}});
  auto resolved = ResolvePasswords(PoolWithUsers(), secrets);
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().code, ErrorCode::kUnauthorized);
  const std::string& message = resolved.error().message;
  EXPECT_NE(message.find("spec.users[1].passwordSecretRef.name"), std::string::npos) << message;
  EXPECT_NE(message.find("Secret shop/ro-creds is not labelled poolkeeper.io/expose-to-pools=true"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("payments-api-key"), std::string::npos);
}

TEST(ResolvePasswords, AnUnlabelledSecretWithoutDataIsRefusedTheSameWay) {
  // What the operator's source returns for an unlabelled Secret: its metadata only.
  SecretMap secrets;
  secrets.Put({"shop", "app-creds", "3", {}, {}});
  secrets.Put({"shop", "ro-creds", "9", {{"pw", "b"}}, Labelled()});
  auto resolved = ResolvePasswords(PoolWithUsers(), secrets);
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().code, ErrorCode::kUnauthorized) << resolved.error().message;
}

}  // namespace
}  // namespace poolkeeper::secrets
