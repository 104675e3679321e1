#include "kube/json_stream.h"

namespace poolkeeper::kube {

Result<std::vector<nlohmann::json>> JsonStreamSplitter::Feed(std::string_view bytes) {
  buffer_.append(bytes);
  std::vector<nlohmann::json> values;
  size_t start = 0;
  for (size_t i = scanned_; i < buffer_.size(); ++i) {
    char c = buffer_[i];
    // start is the first byte of the value being read (whitespace before it is skipped below).
    if (i >= start && i - start >= max_value_bytes_) {
      return Fail(ErrorCode::kInvalid, "watch stream: a value longer than " +
                                           std::to_string(max_value_bytes_) + " bytes");
    }
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (depth_ == 0 && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
      if (i == start) ++start;  // whitespace between values
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ < 0) return Fail(ErrorCode::kInvalid, "watch stream: unbalanced JSON");
      if (depth_ == 0) {
        auto value =
            nlohmann::json::parse(buffer_.begin() + static_cast<ptrdiff_t>(start),
                                  buffer_.begin() + static_cast<ptrdiff_t>(i + 1), nullptr, false);
        if (value.is_discarded()) return Fail(ErrorCode::kInvalid, "watch stream: invalid JSON");
        values.push_back(std::move(value));
        start = i + 1;
      }
    } else if (depth_ == 0) {
      return Fail(ErrorCode::kInvalid, "watch stream: expected an object");
    }
  }
  buffer_.erase(0, start);
  scanned_ = buffer_.size();
  return values;
}

}  // namespace poolkeeper::kube
