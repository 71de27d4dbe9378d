// timfusion-train: the step loop that train, search, meta and adapt share (no LibTorch).
//
// A run's progress is the step count, the training seconds and the command
// line of every session; a checkpoint stores it next to the weights. The loop
// runs steps from there to `steps`: checkpoints at its cadence, at the last
// step and on Ctrl-C / SIGTERM (exit 130 with a resume hint), leaves after
// --stop-at without one (as a kill would), and draws the progress bar.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "timfusion/safetensors.h"

namespace timfusion::train {

struct RunProgress {
  int64_t done = 0;                   // steps done
  double elapsed = 0;                 // training seconds over all sessions
  std::vector<std::string> sessions;  // the command line of each session
};

// Stores `p` as the checkpoint's "timfusion.checkpoint" metadata ({"step", "seconds", "sessions"}).
void set_checkpoint_progress(SafetensorsFile& checkpoint, const RunProgress& p);
// Reads a checkpoint and restores `p` from it; the caller loads the modules
// from the returned file. Throws Error when it is not a timfusion-train checkpoint.
SafetensorsFile read_checkpoint(const std::string& path, RunProgress& p);

// --resume of a run folder without checkpoint.safetensors: an Error. (It used
// to start again at step 0, silently replacing the finished model and
// log.csv of a run whose checkpoint was deleted: issue 27.)
void require_checkpoint_to_resume(const std::string& checkpoint, const std::string& run_dir);

struct StepLoop {
  StepLoop(std::string command, std::string run_dir, int64_t steps, int64_t checkpoint_every, long stop_at, bool quiet)
      : command(std::move(command)), run_dir(std::move(run_dir)), steps(steps), checkpoint_every(checkpoint_every),
        stop_at(stop_at), quiet(quiet) {}

  std::string command;  // "search": progress label and "timfusion-train search: ..." messages
  std::string run_dir;  // for the resume hint
  int64_t steps = 0, checkpoint_every = 1;
  long stop_at = -1;             // --stop-at: leave after this step without a checkpoint
  bool quiet = false;            // no progress bar
  bool announce_stop_at = true;  // say "stopped after step N (--stop-at)" (adapt leaves silently)

  std::function<void()> step;                 // runs step `done` (and advances `done`)
  std::function<std::string()> record;        // after `elapsed` is updated: checks and logs the step; returns the bar's status
  std::function<void()> flush;                // flushes the logs
  std::function<void()> checkpoint;           // writes the checkpoint (and refreshes the plots)
  // Whether to stop after this step (checkpoint, exit 130); empty: Ctrl-C /
  // SIGTERM in this process. Data-parallel ranks agree on it (run/distributed.h).
  std::function<bool()> stop_requested;
};

// Runs the steps `p.done` .. `loop.steps - 1`; `p.elapsed` counts on from
// its value at the start. Returns the exit status when the run leaves early
// (130 after a signal, 0 after --stop-at), or nothing when every step is
// done (logs flushed; a run resumed at its end checkpoints once more).
std::optional<int> run_step_loop(const StepLoop& loop, RunProgress& p);

}  // namespace timfusion::train
