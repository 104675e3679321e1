// Dinic's max-flow: BFS levels, then blocking flows by DFS along strictly increasing levels.
#include "budget/max_flow.h"

#include <algorithm>
#include <queue>

namespace poolkeeper::budget {

MaxFlow::MaxFlow(int nodes) : adjacent_(nodes), level_(nodes), next_(nodes) {}

void MaxFlow::AddEdge(int from, int to, int64_t capacity) {
  adjacent_[from].push_back(static_cast<int>(edges_.size()));
  edges_.push_back({to, std::max<int64_t>(capacity, 0)});
  adjacent_[to].push_back(static_cast<int>(edges_.size()));
  edges_.push_back({from, 0});
}

bool MaxFlow::BuildLevels(int source, int sink) {
  std::ranges::fill(level_, -1);
  level_[source] = 0;
  std::queue<int> queue;
  queue.push(source);
  while (!queue.empty()) {
    int node = queue.front();
    queue.pop();
    for (int index : adjacent_[node]) {
      const Edge& edge = edges_[index];
      if (edge.capacity > 0 && level_[edge.to] < 0) {
        level_[edge.to] = level_[node] + 1;
        queue.push(edge.to);
      }
    }
  }
  return level_[sink] >= 0;
}

int64_t MaxFlow::Push(int node, int sink, int64_t limit) {
  if (node == sink) return limit;
  for (std::size_t& i = next_[node]; i < adjacent_[node].size(); ++i) {
    int index = adjacent_[node][i];
    Edge& edge = edges_[index];
    if (edge.capacity <= 0 || level_[edge.to] != level_[node] + 1) continue;
    int64_t pushed = Push(edge.to, sink, std::min(limit, edge.capacity));
    if (pushed > 0) {
      edge.capacity -= pushed;
      edges_[index ^ 1].capacity += pushed;
      return pushed;
    }
  }
  return 0;
}

int64_t MaxFlow::Run(int source, int sink) {
  int64_t total = 0;
  while (BuildLevels(source, sink)) {
    std::ranges::fill(next_, std::size_t{0});
    // The source's outgoing capacities bound each push, so kUnbounded as the limit is safe.
    while (int64_t pushed = Push(source, sink, kUnbounded)) total += pushed;
  }
  return total;
}

}  // namespace poolkeeper::budget
