#include "main/policy_flags.h"

#include "main/command_line.h"

namespace poolkeeper::cli {
namespace {

// "a, b,,c" -> {"a", "b", "c"}.
std::vector<std::string> Items(const std::string& list) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) items.push_back(std::move(item));
    start = comma + 1;
  }
  return items;
}

}  // namespace

void PodPolicyFlags::Add(CLI::App& command) {
  options_.push_back(
      command
          .add_option("--allowed-pooler-images", images_,
                      "images pooler pods may run: REPOSITORY (any tag or digest), "
                      "REPOSITORY:TAG,\nREPOSITORY@DIGEST, PREFIX/* (every repository under it) "
                      "or * (default: the\ndefault image's repository; the default image is "
                      "always allowed)")
          ->option_text("a,b"));
  options_.push_back(command
                         .add_option("--allowed-priority-classes", priority_classes_,
                                     "system-* priority classes pools may use (default: none; "
                                     "other classes\nare always allowed)")
                         ->option_text("a,b"));
  options_.push_back(command
                         .add_flag("--allow-blanket-tolerations", allow_blanket_tolerations_,
                                   "let pools tolerate every taint, or the taints of control "
                                   "plane nodes and\nnode conditions (default: refused)")
                         ->check(OneOf({"true", "false"})));
}

bool PodPolicyFlags::Given() const {
  for (const CLI::Option* option : options_) {
    if (option->count() > 0) return true;
  }
  return false;
}

Result<api::PodPolicy> PodPolicyFlags::Policy(const api::ParseDefaults& defaults) const {
  return api::MakePodPolicy(Items(images_), Items(priority_classes_), allow_blanket_tolerations_,
                            defaults);
}

}  // namespace poolkeeper::cli
