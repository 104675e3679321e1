// Benchmark, not a test: the heap bytes one cached object of each kind costs the operator,
// measured. Takes objects exactly as a 1.35 API server returned them
// (tests/unit/controller/testdata/*.json, captured with `kubectl get -o json` from the test cluster
// running the operator), runs each through the informer's decode (kube::KeepForCache: managedFields
// stripped, then the kind's trim from controller::TrimFor, as the Manager's informers do) COPIES
// times, and reports glibc's count of heap bytes in use (mallinfo2().uordblks) before and after,
// divided by COPIES: the JSON tree, its strings and the shared pointer the store holds. "untrimmed"
// is the same decode without the trim; "packed" is the trimmed object as a packed store keeps it
// (InformerOptions::pack: its CBOR bytes, as the pools' and owned objects' caches do), and "decode"
// the microseconds one read of it takes (StoredObject::Object, the mean of COPIES reads).
//
//   build/bench/cache_bytes                 # 1000 copies of each testdata object
//   build/bench/cache_bytes 200 DIR         # other copies, other objects (DIR/<file>.json)
//
// Only under glibc without a sanitizer (uordblks is 0 elsewhere). The store's map node and key
// (~150 B an object) are not counted.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "controller/cache_trim.h"
#include "kube/informer.h"

namespace {

using nlohmann::json;
using poolkeeper::kube::InformerOptions;
using poolkeeper::kube::KeepForCache;
using poolkeeper::kube::ObjectPtr;
using poolkeeper::kube::StoredObject;

struct Sample {
  const char* label;  // what the cache is
  const char* file;   // testdata/<file>.json
  bool foreign;       // a foreign-name cache (metadata only, TrimToOwnership)
};

// The caches of one pool as bench/peer.sh makes them (instances 0) come first; their sum is the
// per-pool figure.
constexpr Sample kSamples[] = {
    {"ConnectionPool", "connectionpool", false},
    {"ConfigMap (owned)", "configmap", false},
    {"Secret (owned)", "secret", false},
    {"Service (owned)", "service", false},
    {"PodDisruptionBudget (owned)", "poddisruptionbudget", false},
    {"Pod (pooler)", "pod", false},
    {"PostgresServer", "postgresserver", false},
    {"Secret (foreign name)", "secret", true},
};
constexpr int kPerPoolSamples = 4;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

InformerOptions OptionsFor(const json& object, bool foreign, bool trim) {
  InformerOptions options;
  if (!trim) return options;
  options.trim = foreign ? poolkeeper::controller::TrimToOwnership
                         : poolkeeper::controller::TrimFor(object.value("kind", ""));
  return options;
}

// Heap bytes per object that `copies` decoded copies of `text` hold, as a store with `pack` keeps
// them.
size_t HeapPerObject(const std::string& text, const InformerOptions& options, bool pack,
                     int copies) {
  std::vector<StoredObject> kept;
  kept.reserve(copies);
  const size_t before = mallinfo2().uordblks;
  for (int i = 0; i < copies; ++i) {
    kept.emplace_back(KeepForCache(json::parse(text), options), pack);
  }
  const size_t after = mallinfo2().uordblks;
  return after > before ? (after - before) / copies : 0;
}

// Microseconds one read of a packed `text` takes, the mean of `copies` reads.
double DecodeMicros(const std::string& text, const InformerOptions& options, int copies) {
  const StoredObject stored(KeepForCache(json::parse(text), options), true);
  size_t members = 0;  // used, so the reads are not optimized away
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < copies; ++i) members += stored.Object()->size();
  const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
  return members == 0 ? 0 : took.count() / copies;
}

}  // namespace

int main(int argc, char** argv) {
  const int copies = argc > 1 ? std::atoi(argv[1]) : 1000;
  const std::string dir = argc > 2 ? argv[2] : POOLKEEPER_TESTDATA_DIR;
  if (copies <= 0) {
    std::fprintf(stderr, "usage: cache_bytes [COPIES] [DIR]\n");
    return 2;
  }
  std::printf("bytes per cached object, %d copies each (heap: mallinfo2 uordblks delta / copies)\n",
              copies);
  std::printf("%-28s %10s %10s %12s %12s %12s %10s\n", "cache", "JSON text", "cached",
              "heap untrim", "heap cached", "heap packed", "decode us");
  size_t pool_untrimmed = 0;
  size_t pool_cached = 0;
  size_t pool_packed = 0;
  int index = 0;
  for (const Sample& sample : kSamples) {
    const std::string text = ReadFile(dir + "/" + sample.file + ".json");
    ++index;
    if (text.empty()) {
      std::printf("%-28s (no %s/%s.json)\n", sample.label, dir.c_str(), sample.file);
      continue;
    }
    const json raw = json::parse(text);
    const InformerOptions untrimmed = OptionsFor(raw, sample.foreign, false);
    const InformerOptions trimmed = OptionsFor(raw, sample.foreign, true);
    const size_t cached_text = KeepForCache(raw, trimmed)->dump().size();
    const size_t heap_untrimmed = HeapPerObject(text, untrimmed, false, copies);
    const size_t heap_cached = HeapPerObject(text, trimmed, false, copies);
    const size_t heap_packed = HeapPerObject(text, trimmed, true, copies);
    std::printf("%-28s %10zu %10zu %12zu %12zu %12zu %10.1f\n", sample.label, text.size(),
                cached_text, heap_untrimmed, heap_cached, heap_packed,
                DecodeMicros(text, trimmed, copies));
    if (index <= kPerPoolSamples) {
      pool_untrimmed += heap_untrimmed;
      pool_cached += heap_cached;
      pool_packed += heap_packed;
    }
  }
  std::printf("%-28s %10s %10s %12zu %12zu %12zu\n", "a pool at 0 instances (sum)", "", "",
              pool_untrimmed, pool_cached, pool_packed);
  std::printf("%-28s %10s %10s %11.1fM %11.1fM %11.1fM\n", "  x 1,000 pools (MiB)", "", "",
              pool_untrimmed * 1000.0 / 1048576, pool_cached * 1000.0 / 1048576,
              pool_packed * 1000.0 / 1048576);
  return 0;
}
