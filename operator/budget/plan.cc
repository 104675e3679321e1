#include "budget/plan.h"

#include <algorithm>

namespace poolkeeper::budget {

std::string_view SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "Info";
    case Severity::kWarning:
      return "Warning";
    case Severity::kError:
      return "Error";
  }
  return "Info";
}

std::string_view VerdictName(Verdict verdict) {
  return verdict == Verdict::kWithinBudget ? "WithinBudget" : "BudgetExceeded";
}

bool Plan::AnyError() const {
  return std::ranges::any_of(pools, [](const PoolPlan& pool) {
    return std::ranges::any_of(pool.findings,
                               [](const Finding& f) { return f.severity == Severity::kError; });
  });
}

}  // namespace poolkeeper::budget
