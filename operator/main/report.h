// How `poolkeeper check` shows a Plan: a human-readable text with the arithmetic spelled out, or
// the stable JSON shape scripts and CI pipelines parse.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "budget/plan.h"

namespace poolkeeper::cli {

nlohmann::json PlanToJson(const budget::Plan& plan);
std::string PlanToText(const budget::Plan& plan);

}  // namespace poolkeeper::cli
