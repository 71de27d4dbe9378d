// timfusion-train search: the subcommand's entry point (no LibTorch here).
#pragma once

namespace timfusion::train {

// `timfusion-train search`: implicit architecture search with a latency budget.
int cmd_search(int argc, char** argv, int first);

}  // namespace timfusion::train
