#include "yaml/yaml.h"

#include <gtest/gtest.h>

namespace poolkeeper::yaml {
namespace {

using nlohmann::json;

TEST(ParseYamlDocuments, TypesPlainScalarsAndKeepsQuotedOnesAsStrings) {
  auto docs = ParseYamlDocuments(
      "a: 1\nb: \"1\"\nc: true\nd: ~\ne: 20%\nf: 1.5\ng: '007'\nh: !!str 12\n", "t.yaml");
  ASSERT_TRUE(docs.has_value()) << docs.error().message;
  EXPECT_EQ(
      (*docs)[0],
      json::parse(R"({"a":1,"b":"1","c":true,"d":null,"e":"20%","f":1.5,"g":"007","h":"12"})"));
}

TEST(ParseYamlDocuments, SplitsDocumentsAndSkipsEmptyOnes) {
  auto docs = ParseYamlDocuments("---\na: 1\n---\n---\nb: 2\n", "t.yaml");
  ASSERT_TRUE(docs.has_value());
  EXPECT_EQ(docs->size(), 2u);
}

TEST(ParseYamlDocuments, ReportsSyntaxErrorsWithTheirPosition) {
  auto docs = ParseYamlDocuments("a: [1, 2\n", "bad.yaml");
  ASSERT_FALSE(docs.has_value());
  EXPECT_NE(docs.error().message.find("bad.yaml:"), std::string::npos) << docs.error().message;
}

TEST(ParseYamlDocuments, RejectsDuplicateKeys) {
  auto docs = ParseYamlDocuments("a: 1\na: 2\n", "dup.yaml");
  ASSERT_FALSE(docs.has_value());
  EXPECT_NE(docs.error().message.find("duplicate key"), std::string::npos);
}

TEST(ToYaml, RoundTripsThroughTheParser) {
  json value = json::parse(R"({"a":"1","b":1,"c":"yes","d":"line1\nline2\n","e":[{"f":true}],
      "g":"plain text","h":"","i":null,"j":"- dash"})");
  auto docs = ParseYamlDocuments(ToYaml(value), "out.yaml");
  ASSERT_TRUE(docs.has_value()) << ToYaml(value);
  EXPECT_EQ((*docs)[0], value) << ToYaml(value);
}

}  // namespace
}  // namespace poolkeeper::yaml
