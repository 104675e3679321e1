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
  // An event is one object as the API server stores it (etcd refuses requests over 1.5 MiB by
  // default) inside {"type":...,"object":...}; JSON escaping can grow it, hence the margin.
  static constexpr size_t kDefaultMaxValueBytes = size_t{16} << 20;

  // A value longer than `max_value_bytes` (counted from its first byte, whatever the chunking) is
  // an error: a stream that never closes its value must not grow the buffer without bound.
  explicit JsonStreamSplitter(size_t max_value_bytes = kDefaultMaxValueBytes)
      : max_value_bytes_(max_value_bytes) {}

  // Appends bytes; returns every value completed by them, in order. A value that does not parse,
  // or grows past the limit, is an error (kInvalid), and the stream should be dropped.
  Result<std::vector<nlohmann::json>> Feed(std::string_view bytes);
  // Bytes of a value begun but not finished.
  size_t Pending() const { return buffer_.size(); }

 private:
  size_t max_value_bytes_;
  std::string buffer_;
  size_t scanned_ = 0;  // how far buffer_ has been scanned
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

}  // namespace poolkeeper::kube
