// How the operator's process uses the C library's allocator. glibc gives every thread that
// allocates an arena of its own (up to 8 per core), and a freed chunk goes back to the kernel only
// from the top of an arena: a process with a dozen threads that built and dropped large JSON
// trees (a LIST of every pool, the bulk of a first sync) keeps tens of MiB of free heap resident.
// Two arenas for the whole process, and a trim of every arena when the work is done, keep the
// resident size near what is live. Linux/glibc only; elsewhere both are no-ops.
#pragma once

#include <cstddef>

namespace poolkeeper {

// At most two malloc arenas. Call at the start of main, before any thread allocates.
void LimitMallocArenas();
// Returns free heap pages to the kernel (malloc_trim(0)): for when a burst of work has ended.
// Takes a few milliseconds on a large heap; never call it on a hot path.
void ReleaseFreeMemory();

// The allocator's own count (glibc's mallinfo2), for /metrics: what the resident size is made of.
// in_use: live heap; free: freed heap not given back (fragments malloc_trim cannot return);
// mapped: large blocks in mappings of their own. All zero elsewhere.
struct HeapFigures {
  size_t in_use = 0;
  size_t free = 0;
  size_t mapped = 0;
};
HeapFigures ReadHeap();

}  // namespace poolkeeper
