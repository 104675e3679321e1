// Fuzz target "json_stream": the watch-stream splitter (kube/json_stream.h), targets.h.
#include <string>
#include <vector>

#include "kube/json_stream.h"
#include "targets.h"

namespace poolkeeper::fuzz {
namespace {

// Small, so that inputs of a few KiB reach the limit.
constexpr size_t kMaxValueBytes = 1024;

struct Outcome {
  bool ok = true;
  std::vector<nlohmann::json> values;
  size_t pending = 0;
};

// Feeds `body` in chunks of the given sizes (cycled), as a transport would hand them over.
Outcome FeedInChunks(std::string_view body, const std::vector<size_t>& sizes) {
  kube::JsonStreamSplitter splitter(kMaxValueBytes);
  Outcome outcome;
  for (size_t at = 0, n = 0; at < body.size(); ++n) {
    const size_t size = std::min(sizes[n % sizes.size()], body.size() - at);
    auto values = splitter.Feed(body.substr(at, size));
    at += size;
    if (!values) {
      outcome.ok = false;
      return outcome;
    }
    for (auto& value : *values) outcome.values.push_back(std::move(value));
    // Nothing beyond the value being read is kept, and that is bounded.
    if (splitter.Pending() > kMaxValueBytes) Violated("json_stream: buffered past the limit", "");
  }
  outcome.pending = splitter.Pending();
  return outcome;
}

}  // namespace

void JsonStream(std::span<const uint8_t> data) {
  if (data.empty()) return;
  // The first byte picks the chunking: a few sizes from 1 to 64 bytes.
  const uint8_t seed = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data.data()) + 1, data.size() - 1);
  const std::vector<size_t> chunks = {size_t{1} + (seed & 0x0f), size_t{1} + (seed >> 4) * 4U,
                                      size_t{1}, size_t{7} + (seed % 5)};

  const Outcome whole = FeedInChunks(body, {body.size() + 1});
  const Outcome chunked = FeedInChunks(body, chunks);
  if (whole.ok != chunked.ok) {
    Violated("json_stream: whole and chunked feeds disagree on failing", body);
  }
  if (!whole.ok) return;
  if (whole.values != chunked.values || whole.pending != chunked.pending) {
    Violated("json_stream: whole and chunked feeds give different values", body);
  }
  for (const auto& value : whole.values) {
    if (value.is_discarded()) Violated("json_stream: a discarded value was returned", body);
  }
}

}  // namespace poolkeeper::fuzz
