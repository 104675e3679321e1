// The findings the planner attaches to a pool: the budget's own (BudgetExceeded, DerivedCaps) with
// the arithmetic spelled out, and advisory ones about clients and settings. Internal to the
// planner.
#pragma once

#include <cstdint>
#include <string>

#include "api/connection_pool.h"
#include "budget/plan.h"
#include "budget/sizing.h"

namespace poolkeeper::budget {

// Where a pool stood in its server's ledger when it was charged.
struct LedgerPosition {
  const api::ServerSpec* server = nullptr;  // the limits as declared (identical for every pool)
  int64_t usable = 0;
  int64_t overhead = 0;
  int64_t earlier = 0;  // allocated to the pools before this one on the same server
  // Held now by later pools' pods and by pods of pools not planned (deleted, invalid, orphaned).
  int64_t held = 0;
  int64_t remaining = 0;  // usable - earlier - held, or less (constraint)
  // What lowered `remaining` further, as text (a namespace quota, a server that cannot be
  // observed); empty when nothing did.
  std::string constraint;
};

// "(2 instances + 1 surge)"
std::string PodsText(int instances, int max_surge);
// " - 12 allocated to earlier pools - 5 held by other pools' pods", the terms of `remaining`, and
// its constraint when there is one.
std::string LedgerTerms(const LedgerPosition& ledger);

// The pool's worst case does not fit what remains; `plan` is already filled in.
Finding BudgetExceededFinding(const api::ConnectionPool& pool, const PoolPlan& plan,
                              const Sizing& sizing, const LedgerPosition& ledger);

// The caps the planner chose to make the pool fit, and why.
Finding DerivedCapsFinding(const PoolPlan& plan, const Sizing& sizing,
                           const LedgerPosition& ledger);

// ClientCapacityExceeded, SessionModeQueueing, MinPoolExceedsCap, NoOverheadReserved,
// InstancesZero: appended to plan.findings (plan's sizes and client numbers already filled in).
void AddAdvisoryFindings(const api::ConnectionPool& pool, const LedgerPosition& ledger,
                         PoolPlan& plan);

}  // namespace poolkeeper::budget
