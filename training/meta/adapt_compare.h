// timfusion-train adapt --compare: several adapt runs side by side (no LibTorch).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace timfusion::train {

// Reads eval.csv of several adapt runs and draws one panel per column
// (loss and each metric) against the adaptation step; writes a Markdown table.
void compare_adapt_runs(const std::vector<std::pair<std::string, std::string>>& runs_and_labels, const std::string& png,
                        const std::string& markdown);

// `timfusion-train adapt --compare RUN[=LABEL] ... [--plot OUT.png] [--table OUT.md]`:
// argv[first..] may hold only these options.
int cmd_adapt_compare(int argc, char** argv, int first);

}  // namespace timfusion::train
