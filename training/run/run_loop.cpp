#include "run/run_loop.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "run/checkpoint_integrity.h"
#include "run/stop_signal.h"
#include "timfusion/error.h"
#include "timfusion/progress.h"

namespace timfusion::train {

void set_checkpoint_progress(SafetensorsFile& checkpoint, const RunProgress& p) {
  checkpoint.metadata["timfusion.checkpoint"] =
      nlohmann::json{{"step", p.done}, {"seconds", p.elapsed}, {"sessions", p.sessions}}.dump();
}

SafetensorsFile read_checkpoint(const std::string& path, RunProgress& p) {
  SafetensorsFile f = read_safetensors(path);
  auto it = f.metadata.find("timfusion.checkpoint");
  if (it == f.metadata.end()) throw Error(path + ": not a timfusion-train checkpoint");
  verify_checksum(f, path);  // a damaged file is named as such, not found later as a NaN loss
  auto meta = nlohmann::json::parse(it->second);
  p.done = meta.at("step").get<int64_t>();
  p.elapsed = meta.at("seconds").get<double>();
  p.sessions = meta.at("sessions").get<std::vector<std::string>>();
  return f;
}

void require_checkpoint_to_resume(const std::string& checkpoint, const std::string& run_dir) {
  std::error_code ec;
  if (std::filesystem::exists(checkpoint, ec)) return;
  throw Error(checkpoint + ": not found, so " + run_dir +
              " cannot be resumed (nothing in the folder was changed): start a new run with another --out");
}

std::optional<int> run_step_loop(const StepLoop& loop, RunProgress& p) {
  StopSignal stop;
  Progress bar(loop.command, loop.steps, !loop.quiet);
  bar.update(p.done);
  const int64_t first = p.done;
  auto t0 = std::chrono::steady_clock::now();
  const double base_elapsed = p.elapsed;
  auto stop_requested = [&] { return loop.stop_requested ? loop.stop_requested() : StopSignal::requested(); };
  while (p.done < loop.steps) {
    loop.step();
    p.elapsed = base_elapsed + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string status = loop.record();
    const bool last = p.done == loop.steps;
    const bool stop = stop_requested();
    if (p.done % loop.checkpoint_every == 0 || last || stop) {
      loop.flush();
      loop.checkpoint();
    }
    bar.update(p.done, status);
    if (stop) {
      loop.flush();
      std::fprintf(stderr, "\ntimfusion-train %s: interrupted at step %lld; checkpoint saved. Continue with:\n"
                           "  timfusion-train %s --resume %s\n",
                   loop.command.c_str(), static_cast<long long>(p.done), loop.command.c_str(), loop.run_dir.c_str());
      return 130;
    }
    if (loop.stop_at >= 0 && p.done >= loop.stop_at && !last) {
      loop.flush();
      if (loop.announce_stop_at)
        std::fprintf(stderr, "\ntimfusion-train %s: stopped after step %lld (--stop-at)\n", loop.command.c_str(),
                     static_cast<long long>(p.done));
      return 0;
    }
  }
  bar.finish();
  loop.flush();
  if (first == loop.steps) loop.checkpoint();
  return std::nullopt;
}

}  // namespace timfusion::train
