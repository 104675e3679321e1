#include "agent/config_check.h"

#include <gtest/gtest.h>

namespace poolkeeper::agent {
namespace {

TEST(PgBouncerSection, ReadsOnlyThePgbouncerSection) {
  auto section = PgBouncerSection(
      "[databases]\npool_mode = nope\n[PgBouncer]\n; comment\nPool_Mode =  transaction \n"
      "admin_users = a, b\n[users]\nx = pool_mode=session\n");
  EXPECT_EQ(section, (std::map<std::string, std::string>{{"admin_users", "a, b"},
                                                         {"pool_mode", "transaction"}}));
}

TEST(CompareConfig, ComparesAsTextNumbersBooleansAndLists) {
  struct Case {
    std::string want;
    std::string running;
    bool same;
  };
  for (const Case& c : std::vector<Case>{
           {"20", "20", true},
           {"30", "30.0", true},
           {"20", "10", false},
           {"1", "on", true},
           {"yes", "1", true},
           {"0", "1", false},
           {"a, b", "a,b", true},
           {"a,b", "a,c", false},
           {"transaction", "session", false},
       }) {
    postgres::ConsoleTable show{{"key", "value", "default", "changeable"},
                                {{"some_key", c.running, "", "yes"}}};
    auto mismatches = CompareConfig({{"some_key", c.want}}, show);
    EXPECT_EQ(mismatches.empty(), c.same) << c.want << " vs " << c.running;
  }
}

TEST(CompareConfig, SkipsKeysShowConfigDoesNotReportAndMarksRestartOnlyOnes) {
  postgres::ConsoleTable show{
      {"key", "value", "default", "changeable"},
      {{"listen_port", "6432", "6432", "no"}, {"default_pool_size", "20", "20", "yes"}}};
  auto mismatches = CompareConfig(
      {{"listen_port", "7432"}, {"default_pool_size", "20"}, {"not_shown", "1"}}, show);
  EXPECT_EQ(mismatches, (std::vector<Mismatch>{{"listen_port", "7432", "6432", false}}));
}

}  // namespace
}  // namespace poolkeeper::agent
