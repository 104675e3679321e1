// Splits a watch response body into its JSON values as bytes arrive. The API server writes one
// object per event, but neither chunk nor line boundaries are promised to match them, so values
// are found by tracking JSON nesting (and strings, where braces do not count).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace poolkeeper::kube {

class JsonStreamSplitter {
 public:
  // Appends bytes; returns every value completed by them, in order. A value that does not parse
  // is an error (kInvalid), and the stream should be dropped.
  Result<std::vector<nlohmann::json>> Feed(std::string_view bytes);
  // Bytes of a value begun but not finished.
  size_t Pending() const { return buffer_.size(); }

 private:
  std::string buffer_;
  size_t scanned_ = 0;  // how far buffer_ has been scanned
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

}  // namespace poolkeeper::kube
