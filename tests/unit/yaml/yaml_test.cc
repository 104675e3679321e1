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

TEST(ParseYamlDocuments, TypesNumbersOfEveryForm) {
  auto docs = ParseYamlDocuments(
      "a: -12\nb: +7\nc: .5\nd: 1.\ne: -2.5e3\nf: 1E+2\ng: 1e\nh: +\ni: 1.2.3\nj: "
      "99999999999999999999\n",
      "t.yaml");
  ASSERT_TRUE(docs.has_value()) << docs.error().message;
  EXPECT_EQ((*docs)[0], json::parse(R"({"a":-12,"b":7,"c":0.5,"d":1.0,"e":-2500.0,"f":100.0,
      "g":"1e","h":"+","i":"1.2.3","j":1e20})"));
}

// Found while building the fuzz targets (tests/fuzz): a plain scalar of 300,000 digits overflowed
// the stack in std::regex (SIGSEGV), and 1e999 threw std::out_of_range out of std::stod, which
// ended `poolkeeper check`. Both are now an error naming the place.
TEST(ParseYamlDocuments, RefusesNumbersOutOfRangeWithoutCrashing) {
  for (const std::string& text : {"a: " + std::string(300000, '1') + "\n",
                                  std::string("a: 1e999\n"), std::string("a: -1e-999\n")}) {
    auto docs = ParseYamlDocuments(text, "big.yaml");
    ASSERT_FALSE(docs.has_value()) << text.substr(0, 20);
    EXPECT_NE(docs.error().message.find("big.yaml:1:4: the number"), std::string::npos)
        << docs.error().message;
    EXPECT_NE(docs.error().message.find("out of range"), std::string::npos);
  }
}

// Found by the fuzz target render: yaml-cpp's LoadAll collected empty documents forever (and the
// memory with them) when a document started with a flow indicator. Refused, naming the place.
TEST(ParseYamlDocuments, RefusesBytesThatAreNotUtf8NamingTheirPlace) {
  // Found by the fuzz target manifests: yaml-cpp passed such bytes through and its emitter
  // rewrote them, so `render` printed another string than the one read.
  for (std::string text :
       {std::string("a: \xff\n"), std::string("a: b\nc: \xc0\xaf\n"),
        std::string("a: \xed\xa0\x80\n"), std::string("a: \xe2\x82\n"),
        std::string("\0\0\0c\ntrue", 9), std::string("a: b\x7f\n"), std::string("a: \x01\n"),
        std::string("\r"), std::string("a: b\rc: d\n")}) {
    auto docs = ParseYamlDocuments(text, "bytes.yaml");
    ASSERT_FALSE(docs.has_value()) << text;
    EXPECT_NE(docs.error().message.find("not UTF-8"), std::string::npos) << docs.error().message;
  }
  auto docs = ParseYamlDocuments("a: b\nc: \xc0\xaf\n", "bytes.yaml");
  ASSERT_FALSE(docs.has_value());
  EXPECT_NE(docs.error().message.find("bytes.yaml:2:4:"), std::string::npos)
      << docs.error().message;
  docs = ParseYamlDocuments("name: \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98\"\n", "ok.yaml");
  ASSERT_TRUE(docs.has_value()) << docs.error().message;
  EXPECT_EQ((*docs)[0]["name"], "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98");
}

TEST(ParseYamlDocuments, RefusesAStrayFlowIndicatorInsteadOfLoopingForever) {
  for (std::string text : {",\n", "a: 1\n---\n,\n", "[a]\n,\n", " , \n"}) {
    auto docs = ParseYamlDocuments(text, "stray.yaml");
    ASSERT_FALSE(docs.has_value()) << text;
    EXPECT_NE(docs.error().message.find("stray.yaml:"), std::string::npos) << docs.error().message;
  }
  auto docs = ParseYamlDocuments("a: 1\n---\n---\n...\n---\nb: [x, y]\n", "ok.yaml");
  ASSERT_TRUE(docs.has_value()) << docs.error().message;
  EXPECT_EQ(docs->size(), 2u);
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

// Issue 12's reproductions: nine levels of nine aliases each (589 bytes) grew to 3 GB, and an
// alias of its own ancestor crashed the CLI with SIGSEGV. Both are refused with a clear error.
TEST(ParseYamlDocuments, RefusesAliasBombsAndRecursiveAliases) {
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 9; ++level) {
    std::string prev = "*a" + std::to_string(level - 1);
    bomb += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) bomb += (i ? ", " : "") + prev;
    bomb += "]\n";
  }
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {bomb, "values once aliases are expanded"},
      {"a: &a [*a]\n", ""},  // yaml-cpp may refuse it itself; either way no crash
      {"a: &a {b: *a}\n", ""},
      {std::string(200, '[') + std::string(200, ']') + "\n", ""},
  };
  for (const auto& c : cases) {
    auto docs = ParseYamlDocuments(c.text, "bomb.yaml");
    ASSERT_FALSE(docs.has_value()) << c.text.substr(0, 40);
    EXPECT_NE(docs.error().message.find("bomb.yaml:"), std::string::npos) << docs.error().message;
    EXPECT_NE(docs.error().message.find(c.error), std::string::npos) << docs.error().message;
  }
}

TEST(ParseYamlDocuments, KeepsAliasesOfRealManifests) {
  auto docs = ParseYamlDocuments("base: &b {pool: 5}\nuse: *b\n", "t.yaml");
  ASSERT_TRUE(docs.has_value()) << docs.error().message;
  EXPECT_EQ((*docs)[0]["use"], json::parse(R"({"pool":5})"));
}

// Found by the fuzz target manifests: a key or value holding a control character (here a CR) was
// written raw, and the reader refuses a lone CR; both are double-quoted with escapes now.
TEST(ToYaml, ControlCharactersInKeysAndValuesReadBackTheSame) {
  const nlohmann::json value = {{"poo\rlMode", "a\rb"}, {"t\tab", "x\x01y"}, {"plain", "z"}};
  auto again = ParseYamlDocuments(ToYaml(value), "again.yaml");
  ASSERT_TRUE(again.has_value()) << again.error().message << "\n" << ToYaml(value);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0], value);
  EXPECT_NE(ToYaml(value).find("plain: z"), std::string::npos) << ToYaml(value);
}

TEST(ToYaml, RoundTripsThroughTheParser) {
  json value = json::parse(R"({"a":"1","b":1,"c":"yes","d":"line1\nline2\n","e":[{"f":true}],
      "g":"plain text","h":"","i":null,"j":"- dash"})");
  auto docs = ParseYamlDocuments(ToYaml(value), "out.yaml");
  ASSERT_TRUE(docs.has_value()) << ToYaml(value);
  EXPECT_EQ((*docs)[0], value) << ToYaml(value);
}

// Found by the fuzz target "manifests" (tests/fuzz): a literal block keeps exactly one final line
// break, so "a\nb" read back as "a\nb\n" and "a\n\n" as "a\n".
TEST(ToYaml, KeepsLineBreaksExactly) {
  for (std::string text : {"a\nb", "a\n\n", "\na\n", " indented\nb\n", "tab\t\nx\n", "cr\r\n",
                           "DISCARD ALL\nauth_type = trust\n", "ini\nfile\n"}) {
    json value = {{"k", text}};
    auto docs = ParseYamlDocuments(ToYaml(value), "out.yaml");
    ASSERT_TRUE(docs.has_value()) << ToYaml(value);
    EXPECT_EQ((*docs)[0], value) << ToYaml(value);
  }
}

}  // namespace
}  // namespace poolkeeper::yaml
