// Whole-file reads and all-or-nothing writes: a file poolkeeper writes is either the old one or
// the complete new one, never half of it (write to a temporary sibling, fsync, rename).
#pragma once

#include <string>

#include "common/error.h"

namespace poolkeeper {

Result<std::string> ReadFile(const std::string& path);
Status WriteFileAtomically(const std::string& path, const std::string& content, int mode = 0644);
Status MakeDirectories(const std::string& path);

}  // namespace poolkeeper
