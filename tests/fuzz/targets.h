// The fuzz targets: each takes one input of arbitrary bytes, runs it through a part of poolkeeper
// that reads untrusted text, and aborts (Violated) when an invariant of that part breaks. Crashes,
// leaks and undefined behaviour are the sanitizers' to find (run.sh builds with clang's
// -fsanitize=fuzzer,address,undefined); the same functions are linked by g++ into replay drivers
// that run the checked-in corpus as a unit test (README.md).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace poolkeeper::fuzz {

// A manifest file as `poolkeeper check -f` reads it (YAML or JSON, many documents), through the
// manifest reader and the budget planner; and the same bytes as the JSON object the operator gets
// from the API server, through the ConnectionPool, PostgresServer and Secret parsers.
void Manifests(std::span<const uint8_t> data);

// A manifest file as `poolkeeper render -f` reads it: every pool that validates is rendered, and
// pgbouncer.ini and userlist.txt must parse back to what the pool says (no line or setting
// injected, values quoted as PgBouncer reads them). The userlist is rendered a second time with
// passwords cut from the raw input, so any byte reaches it.
void Render(std::span<const uint8_t> data);

// A watch response body: split whole and in chunks (sizes from the first byte), both must give the
// same values or both fail, and no more than the value-size limit is ever buffered.
void JsonStream(std::span<const uint8_t> data);

// Reports a broken invariant on stderr and aborts (libFuzzer then saves the input as a crasher).
[[noreturn]] void Violated(std::string_view what, std::string_view detail);

}  // namespace poolkeeper::fuzz
