// timfusion-train meta / adapt: the subcommands' entry points (no LibTorch here).
#pragma once

namespace timfusion::train {

// `timfusion-train meta`: first-order meta-initialisation (Reptile) over pretext fusion tasks.
int cmd_meta(int argc, char** argv, int first);
// `timfusion-train adapt`: fine-tune (meta-)initialised weights to a new task, with
// held-out evaluation along the way; `adapt --compare RUN ...` plots several runs.
int cmd_adapt(int argc, char** argv, int first);

}  // namespace timfusion::train
