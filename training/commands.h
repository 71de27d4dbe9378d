// timfusion-train subcommands. Each takes argv after the subcommand name
// (argv[0] = the program) and returns the exit status; errors a user can
// cause are thrown as timfusion::Error and reported by main().
#pragma once

namespace timfusion::train {

struct CommandSpec;

int cmd_train(int argc, char** argv, int first);
// `train`'s options for run/command_config.h (the shared keys only).
const CommandSpec& train_spec();
// The downstream segmentation protocol (task/downstream.h): what an input type
// (IR, visible, a fusion model's output) is worth to a segmenter.
int cmd_downstream(int argc, char** argv, int first);
// TIM's other stages (search, meta, adapt) are declared in search/commands.h
// and meta/commands.h; they reuse run/ (config, run folder, checkpoints,
// log), data/, losses/ and task/.

}  // namespace timfusion::train
