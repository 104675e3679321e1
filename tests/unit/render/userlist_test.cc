// userlist.txt: quoting, order, and errors that name the field and never the password.
#include <gtest/gtest.h>

#include "pools.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace {

using testing::OrdersPasswords;
using testing::OrdersPool;

TEST(RenderUserlist, SortedByNameWithQuotesDoubled) {
  auto userlist = RenderUserlist(OrdersPool(), OrdersPasswords());
  ASSERT_TRUE(userlist.has_value()) << userlist.error().message;
  EXPECT_EQ(*userlist,
            "\"orders_app\" \"s3cret-orders\"\n"
            "\"plain\" \"plainpw\"\n"
            "\"report-user\" \"rep\"\"ort\"\n");
}

TEST(RenderUserlist, OnlyThePoolsUsers) {
  auto passwords = OrdersPasswords();
  passwords["someone_else"] = "not-for-this-pool";
  auto userlist = RenderUserlist(OrdersPool(), passwords);
  ASSERT_TRUE(userlist.has_value());
  EXPECT_EQ(userlist->find("someone_else"), std::string::npos);
}

TEST(RenderUserlist, MissingPasswordNamesTheFieldAndNoPassword) {
  auto passwords = OrdersPasswords();
  passwords.erase("report-user");
  auto userlist = RenderUserlist(OrdersPool(), passwords);
  ASSERT_FALSE(userlist.has_value());
  const Error& error = userlist.error();
  EXPECT_EQ(error.code, ErrorCode::kNotFound);
  ASSERT_EQ(error.fields.size(), 1u);
  EXPECT_EQ(error.fields[0].field, "spec.users[1].passwordSecretRef");
  EXPECT_TRUE(error.message.starts_with("spec.users[1].passwordSecretRef: ")) << error.message;
  EXPECT_NE(error.message.find("reports-db"), std::string::npos);
  for (const auto& [user, password] : passwords) {
    EXPECT_EQ(error.ToString().find(password), std::string::npos) << "leaks " << user;
  }
}

TEST(RenderUserlist, PasswordsTheFileCannotCarryAreInvalidAndNotEchoed) {
  for (std::string bad : {std::string("Xq9\nauth_type"), std::string("Zr7\rhere"),
                          std::string("Wk3\0byte", 8), std::string()}) {
    auto passwords = OrdersPasswords();
    passwords["plain"] = bad;
    auto userlist = RenderUserlist(OrdersPool(), passwords);
    ASSERT_FALSE(userlist.has_value());
    const Error& error = userlist.error();
    EXPECT_EQ(error.code, ErrorCode::kInvalid);
    ASSERT_EQ(error.fields.size(), 1u);
    EXPECT_EQ(error.fields[0].field, "spec.users[2].passwordSecretRef");
    if (!bad.empty()) {
      EXPECT_EQ(error.ToString().find(bad.substr(0, 3)), std::string::npos) << error.ToString();
    }
  }
}

// Issue 12, item 7: PgBouncer 1.18-1.24 stops reading the auth file at a field of 2048 bytes or
// more, and every later user fails to log in.
TEST(RenderUserlist, PasswordsLongerThanPgBouncerReadsAreRefusedNamingTheUserAndSecret) {
  const struct {
    std::string password;
    bool fits;
  } cases[] = {
      {std::string(kMaxUserlistPassword - 1, 'p'), true},
      {std::string(kMaxUserlistPassword, 'p'), false},
      {std::string(kMaxUserlistPassword - 2, 'p') + "\"", false},  // 2048 once '"' is doubled
  };
  for (const auto& c : cases) {
    auto passwords = OrdersPasswords();
    passwords["plain"] = c.password;
    auto userlist = RenderUserlist(OrdersPool(), passwords);
    EXPECT_EQ(userlist.has_value(), c.fits) << c.password.size();
    if (userlist) continue;
    EXPECT_EQ(userlist.error().fields[0].field, "spec.users[2].passwordSecretRef");
    EXPECT_NE(userlist.error().message.find("\"plain\""), std::string::npos);
    EXPECT_EQ(userlist.error().message.find("pppp"), std::string::npos);
  }
}

}  // namespace
}  // namespace poolkeeper::render
