#include "yaml/yaml.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

namespace poolkeeper::yaml {
namespace {

using nlohmann::json;

constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";

bool IsNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> AsBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

// The core schema's integer and float forms, matched by hand: std::regex recurses once per
// character, and a plain scalar of 300,000 digits overflowed the stack (SIGSEGV).
size_t Digits(std::string_view s, size_t at) {
  size_t end = at;
  while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
  return end - at;
}

// [-+]?[0-9]+
bool IsInt(std::string_view s) {
  size_t at = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  size_t digits = Digits(s, at);
  return digits > 0 && at + digits == s.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloat(std::string_view s) {
  size_t at = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  const size_t whole = Digits(s, at);
  at += whole;
  size_t fraction = 0;
  if (at < s.size() && s[at] == '.') {
    fraction = Digits(s, ++at);
    at += fraction;
  }
  if (whole == 0 && fraction == 0) return false;
  if (at < s.size() && (s[at] == 'e' || s[at] == 'E')) {
    ++at;
    if (at < s.size() && (s[at] == '-' || s[at] == '+')) ++at;
    const size_t exponent = Digits(s, at);
    if (exponent == 0) return false;
    at += exponent;
  }
  return at == s.size();
}

std::optional<int64_t> AsInt(const std::string& s) {
  if (!IsInt(s)) return std::nullopt;
  std::string_view digits = s;
  if (digits.front() == '+') digits.remove_prefix(1);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// nullopt for a float beyond double's range (1e999, 1e-999): std::stod threw there, and the
// exception ended the process.
std::optional<double> AsFloat(const std::string& s) {
  std::string_view text = s;
  if (text.front() == '+') text.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string Where(std::string_view source, const YAML::Node& node) {
  return std::string(source) + ":" + std::to_string(node.Mark().line + 1) + ":" +
         std::to_string(node.Mark().column + 1) + ": ";
}

// What one input may expand to. yaml-cpp shares an aliased node; JSON copies it, so nested
// aliases grow exponentially ("billion laughs": 589 bytes were 3 GB) and an alias of its own
// ancestor recurses without end. Both bounds are far above any real manifest.
struct Budget {
  static constexpr int kMaxDepth = 100;
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  // tests/fuzz: instrumented, a million values take 15 s of CPU, and the fuzzer would spend its
  // time on alias bombs and call them timeouts. The bound's logic is the same, only lower.
  static constexpr size_t kMaxValues = 20'000;
#else
  static constexpr size_t kMaxValues = 1'000'000;
#endif
  size_t values = 0;
};

Result<json> ToJson(const YAML::Node& node, std::string_view source, Budget& budget, int depth) {
  if (depth > Budget::kMaxDepth) {
    return Fail(ErrorCode::kInvalid, Where(source, node) + "nested deeper than " +
                                         std::to_string(Budget::kMaxDepth) +
                                         " levels (or an alias inside itself)");
  }
  if (++budget.values > Budget::kMaxValues) {
    return Fail(ErrorCode::kInvalid, Where(source, node) + "more than " +
                                         std::to_string(Budget::kMaxValues) +
                                         " values once aliases are expanded");
  }
  auto where = [&](const YAML::Node& n) { return Where(source, n); };
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json();
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      // "!" marks a quoted scalar; an explicit !!str tag also forces a string.
      if (node.Tag() == "!" || node.Tag() == kStrTag) return json(text);
      if (IsNull(text)) return json();
      if (auto b = AsBool(text)) return json(*b);
      if (auto i = AsInt(text)) return json(*i);
      if (IsFloat(text)) {
        if (auto f = AsFloat(text)) return json(*f);
        return Fail(ErrorCode::kInvalid,
                    where(node) + "the number " + text.substr(0, 40) + " is out of range");
      }
      return json(text);
    }
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (const auto& item : node) {
        auto value = ToJson(item, source, budget, depth + 1);
        if (!value) return value;
        array.push_back(std::move(*value));
      }
      return array;
    }
    case YAML::NodeType::Map: {
      json object = json::object();
      for (const auto& entry : node) {
        if (!entry.first.IsScalar()) {
          return Fail(ErrorCode::kInvalid, where(entry.first) + "mapping keys must be scalars");
        }
        const std::string& key = entry.first.Scalar();
        if (object.contains(key)) {
          return Fail(ErrorCode::kInvalid, where(entry.first) + "duplicate key \"" + key + "\"");
        }
        auto value = ToJson(entry.second, source, budget, depth + 1);
        if (!value) return value;
        object[key] = std::move(*value);
      }
      return object;
    }
  }
  return json();
}

// Control characters only survive the trip in double quotes, as escapes: the reader refuses them
// raw (a lone CR, a NUL; see FindInvalidUtf8).
bool HasControl(std::string_view s) {
  return std::ranges::any_of(s, [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool NeedsQuotes(const std::string& s) {
  if (s.empty() || IsNull(s) || AsBool(s) || IsInt(s) || IsFloat(s) || HasControl(s)) return true;
  static const std::string kSpecialStart = "!&*-?:,[]{}#|>@`\"'% ";
  if (kSpecialStart.find(s.front()) != std::string::npos || s.back() == ' ') return true;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  for (std::string_view word : {"yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off"}) {
    if (s == word) return true;  // YAML 1.1 readers would take these as booleans
  }
  return false;
}

// A literal block (`|`) keeps exactly one final line break and reads its indentation from the
// first line, and yaml-cpp writes neither a chomping nor an indentation indicator: only text that
// ends in one line break, starts with no blank, and holds only printable characters reads back
// the same (pgbouncer.ini in a ConfigMap does). Anything else is double-quoted, with escapes.
bool ReadsBackAsLiteral(const std::string& s) {
  if (s.size() < 2 || s.back() != '\n' || s[s.size() - 2] == '\n') return false;
  if (s.front() == ' ' || s.front() == '\t' || s.front() == '\n') return false;
  return std::ranges::none_of(s, [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\n') || u == 0x7f;
  });
}

void Emit(YAML::Emitter& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        if (HasControl(key)) out << YAML::DoubleQuoted;
        out << key << YAML::Value;
        Emit(out, item);
      }
      out << YAML::EndMap;
      break;
    case json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : value) Emit(out, item);
      out << YAML::EndSeq;
      break;
    case json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      if (s.find('\n') != std::string::npos && ReadsBackAsLiteral(s)) {
        out << YAML::Literal << s;
      } else if (s.find('\n') != std::string::npos) {
        out << YAML::DoubleQuoted << s;
      } else if (NeedsQuotes(s)) {
        out << YAML::DoubleQuoted << s;
      } else {
        out << s;
      }
      break;
    }
    case json::value_t::boolean:
      out << (value.get<bool>() ? "true" : "false");
      break;
    case json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << value.dump();
  }
}

// yaml-cpp 0.7's LoadAll never returns on a flow indicator where a document starts (",\n" is
// enough): each pass reads an empty document and leaves the token where it was, so it collects
// empty documents until memory runs out (found by the fuzz target render). A first pass over the
// parser's events, which costs no nodes, finds a document that starts where the previous one
// did, and the input is refused before LoadAll sees it.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    stuck_ = started_ && mark.pos == last_.pos;
    started_ = true;
    last_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  std::optional<YAML::Mark> Stuck() const { return stuck_ ? std::optional(last_) : std::nullopt; }

 private:
  bool started_ = false;
  bool stuck_ = false;
  YAML::Mark last_;
};

// Where LoadAll would loop forever, or nullopt. Throws YAML::Exception as LoadAll does.
std::optional<YAML::Mark> FindStuckDocument(std::string_view text) {
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentStarts starts;
  while (parser.HandleNextDocument(starts)) {
    if (auto stuck = starts.Stuck()) return stuck;
  }
  return std::nullopt;
}

// The first byte of `text` that does not start a well-formed UTF-8 sequence (no overlongs, no
// surrogates, nothing past U+10FFFF) or is an ASCII control character YAML does not allow (NUL,
// ...; tab and line breaks are allowed), as line and column; nullopt when it is all printable
// UTF-8. Kubernetes objects are UTF-8, and yaml-cpp would pass such bytes through and emit them
// altered (a NUL ended a document early).
std::optional<std::pair<size_t, size_t>> FindInvalidUtf8(std::string_view text) {
  size_t line = 0, line_start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
    if (byte < 0x80) {
      // YAML's printable set: no C0 control but tab and line breaks, no DEL.
      // A carriage return only before a line feed: yaml-cpp reads a lone one as text, not as
      // the line break YAML says it is, so what it read would not be what was written.
      const bool line_break =
          byte == '\n' || (byte == '\r' && i + 1 < text.size() && text[i + 1] == '\n');
      length = (byte >= 0x20 && byte != 0x7F) || byte == '\t' || line_break ? 1 : 0;
    } else if (byte >= 0xC2 && byte <= 0xDF) {
      length = 2;
    } else if (byte >= 0xE0 && byte <= 0xEF) {
      length = 3;
      if (byte == 0xE0) low = 0xA0;
      if (byte == 0xED) high = 0x9F;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      length = 4;
      if (byte == 0xF0) low = 0x90;
      if (byte == 0xF4) high = 0x8F;
    }
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      valid = k == 1 ? (next >= low && next <= high) : (next >= 0x80 && next <= 0xBF);
    }
    if (!valid) return std::make_pair(line, i - line_start);
    if (byte == '\n') {
      ++line;
      line_start = i + 1;
    }
    i += length;
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<json>> ParseYamlDocuments(std::string_view text, std::string_view source) {
  if (auto bad = FindInvalidUtf8(text)) {
    return Fail(ErrorCode::kInvalid,
                std::string(source) + ":" + std::to_string(bad->first + 1) + ":" +
                    std::to_string(bad->second + 1) +
                    ": not UTF-8 text, or a control character YAML does not allow");
  }
  std::vector<YAML::Node> nodes;
  try {
    if (auto stuck = FindStuckDocument(text)) {
      return Fail(ErrorCode::kInvalid, std::string(source) + ":" + std::to_string(stuck->line + 1) +
                                           ":" + std::to_string(stuck->column + 1) +
                                           ": unexpected character at the start of a document");
    }
    nodes = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kInvalid, std::string(source) + ":" + std::to_string(e.mark.line + 1) +
                                         ":" + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  std::vector<json> documents;
  Budget budget;  // over all documents: a stream of many small bombs is still one input
  try {
    for (const auto& node : nodes) {
      auto value = ToJson(node, source, budget, 0);
      if (!value) return std::unexpected(value.error());
      if (!value->is_null()) documents.push_back(std::move(*value));
    }
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kInvalid, std::string(source) + ": " + e.msg);
  }
  return documents;
}

std::string ToYaml(const json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  Emit(out, value);
  return std::string(out.c_str()) + "\n";
}

}  // namespace poolkeeper::yaml
