// A small max-flow solver (Dinic's algorithm, int64 capacities), internal to the budget planner.
//
// Why a max-flow at all: one pgbouncer process can open at most pool_size + reserve connections per
// (database, user) pool, at most max_db_connections per database and at most
// max_user_connections per user summed across databases. A user cap couples databases, so the
// exact worst case is the maximum flow source -> database -> user -> sink, not a product of counts
// (which over-reserves). The graphs are tiny (a few dozen nodes), so clarity beats speed here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace poolkeeper::budget {

// Large enough to never bind, small enough that sums of a few of them cannot overflow int64.
inline constexpr int64_t kUnbounded = std::numeric_limits<int64_t>::max() / 8;

class MaxFlow {
 public:
  explicit MaxFlow(int nodes);
  // Adds a directed edge; capacities below 0 are treated as 0.
  void AddEdge(int from, int to, int64_t capacity);
  // The value of a maximum flow from `source` to `sink`. Call once per graph.
  int64_t Run(int source, int sink);

 private:
  struct Edge {
    int to;
    int64_t capacity;  // residual
  };
  bool BuildLevels(int source, int sink);
  int64_t Push(int node, int sink, int64_t limit);

  std::vector<Edge> edges_;                 // edge i and its reverse i ^ 1
  std::vector<std::vector<int>> adjacent_;  // edge indices leaving each node
  std::vector<int> level_;
  std::vector<std::size_t> next_;  // per node, the next edge to try in this phase
};

}  // namespace poolkeeper::budget
