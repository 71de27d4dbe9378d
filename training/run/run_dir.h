// timfusion-train: the run folder and its text files.
//
//   <run>/config.json          resolved configuration (what --resume reads)
//   <run>/log.csv              one row per step: step, losses, lr, seconds
//   <run>/checkpoint.safetensors   latest checkpoint (atomic: tmp + rename)
//   <run>/model.safetensors    final weights with timfusion.arch/provenance
//   <run>/loss_curve.png       the log drawn (refreshed at checkpoints)
//   <run>/previews/step-NNNNNN.png   IR | visible | fused samples
//   <run>/task_eval.json       task-guided runs: mIoU fused vs visible-only
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace timfusion::train {

// Writes `text` to `path` through a temporary file + rename.
void write_text_atomic(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// `git rev-parse HEAD` of the source tree (or of the working directory);
// "unknown" when git or the repository is unavailable.
std::string git_commit();
// Shell-quoted argv joined by spaces.
std::string command_line(int argc, char** argv);
// "2024-05-01T12:00:00Z"
std::string utc_now();
// "runs/<command>-YYYYmmdd-HHMMSS" (local time): a new run's folder when --out is not given.
std::string default_run_dir(const std::string& command);
// `p` absolute and normalised ("" stays "").
std::string absolute_path(const std::string& p);
// One number printf-formatted: fmt("%.4f", x).
std::string fmt(const char* printf_format, double v);

// Every line of a CSV file split at commas (no quoting); empty lines are
// skipped. Throws Error when the file cannot be read.
std::vector<std::vector<std::string>> read_csv(const std::string& path);

// The CSV log. Rows are kept in memory for plots and summaries.
class CsvLog {
 public:
  CsvLog() = default;
  ~CsvLog();
  CsvLog(const CsvLog&) = delete;
  CsvLog& operator=(const CsvLog&) = delete;

  // Starts `path` with a header; with keep_until >= 0 an existing log is
  // read back and cut after step keep_until (rows of steps lost to a kill
  // are dropped, so a resumed log has each step once).
  void open(const std::string& path, const std::vector<std::string>& columns, long keep_until = -1);
  void append(const std::vector<double>& row);  // first value: the step
  void flush();
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<std::vector<double>>& rows() const { return rows_; }
  // Mean of column `c` over the last `n` rows.
  double recent_mean(size_t c, size_t n) const;

 private:
  std::string path_;
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;
  FILE* f_ = nullptr;
};

}  // namespace timfusion::train
