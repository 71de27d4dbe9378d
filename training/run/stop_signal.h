// timfusion-train: Ctrl-C / SIGTERM during a long run. The loop finishes its
// step, writes a checkpoint and exits 130; a second signal ends the process
// at once (the last checkpoint stays valid).
#pragma once

namespace timfusion::train {

// Installs the handlers for its lifetime and restores the previous ones.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  static bool requested();

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

}  // namespace timfusion::train
