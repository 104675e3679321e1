#include "common/memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace poolkeeper {

void LimitMallocArenas() {
#if defined(__GLIBC__)
  // Two, not one: the workers and the informers allocate at the same time, and one arena would
  // make every allocation contend for its lock.
  (void)mallopt(M_ARENA_MAX, 2);
#endif
}

void ReleaseFreeMemory() {
#if defined(__GLIBC__)
  (void)malloc_trim(0);
#endif
}

HeapFigures ReadHeap() {
#if defined(__GLIBC__)
  const struct mallinfo2 info = mallinfo2();
  return {.in_use = info.uordblks, .free = info.fordblks, .mapped = info.hblkhd};
#else
  return {};
#endif
}

}  // namespace poolkeeper
