#include "timfusion/progress.h"

#include <unistd.h>

#include <cmath>

namespace timfusion {

Progress::Progress(std::string label, long total, bool enabled)
    : label_(std::move(label)), total_(total > 0 ? total : 1), enabled_(enabled),
      tty_(isatty(fileno(stderr)) != 0), start_(std::chrono::steady_clock::now()) {}

static std::string hms(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}

void Progress::update(long done, const std::string& status) {
  if (!enabled_) return;
  // Off a terminal (CI logs), print a line per ~10% instead of redrawing.
  if (!tty_) {
    long step = total_ / 10 > 0 ? total_ / 10 : 1;
    if (done != total_ && done / step == last_logged_ / step) return;
  }
  last_logged_ = done;
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = el > 0 ? done / el : 0;
  double eta = rate > 0 ? (total_ - done) / rate : NAN;
  const int width = 28;
  int fill = static_cast<int>(width * static_cast<double>(done) / total_);
  std::string bar(fill, '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "%s%s [%s] %ld/%ld %.2f it/s ETA %s %s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
               bar.c_str(), done, total_, rate, hms(eta).c_str(), status.c_str(), tty_ ? "" : "\n");
  std::fflush(stderr);
}

void Progress::finish(const std::string& status) {
  if (!enabled_) return;
  last_logged_ = -1;
  update(total_, status);
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "%s%s done in %s\n", tty_ ? "\n" : "", label_.c_str(), hms(el).c_str());
}

}  // namespace timfusion
