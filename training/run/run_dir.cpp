#include "run/run_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "timfusion/atomic_file.h"
#include "timfusion/error.h"
#include "timfusion/paths.h"

namespace fs = std::filesystem;

namespace timfusion::train {

void write_text_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text);  // O_EXCL temporary in the same folder, then rename
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

namespace {
std::string run_capture(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[256];
  std::string out;
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}
bool is_hash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") ==
                        std::string::npos)
    return s;
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}
}  // namespace

std::string git_commit() {
  // The source tree of an uninstalled build, else the working directory.
  for (const std::string& dir : {uninstalled_source_root(), std::string(".")}) {
    if (dir.empty()) continue;
    std::string h = run_capture("git -C " + shell_quote(dir) + " rev-parse HEAD 2>/dev/null");
    if (is_hash(h)) return h;
  }
  return "unknown";
}

std::string command_line(int argc, char** argv) {
  std::string r;
  for (int i = 0; i < argc; ++i) r += (i ? " " : "") + shell_quote(argv[i]);
  return r;
}

namespace {
std::string format_now(const char* strftime_format, bool utc) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  if (utc)
    gmtime_r(&t, &tm);
  else
    localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, strftime_format, &tm);
  return buf;
}
}  // namespace

std::string utc_now() { return format_now("%Y-%m-%dT%H:%M:%SZ", true); }

std::string default_run_dir(const std::string& command) { return "runs/" + command + format_now("-%Y%m%d-%H%M%S", false); }

std::string absolute_path(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read");
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> row;
    std::stringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) row.push_back(cell);
    if (!row.empty()) rows.push_back(row);
  }
  return rows;
}

CsvLog::~CsvLog() {
  if (f_) std::fclose(f_);
}

void CsvLog::open(const std::string& path, const std::vector<std::string>& columns, long keep_until) {
  path_ = path;
  columns_ = columns;
  rows_.clear();
  std::string header;
  for (size_t i = 0; i < columns.size(); ++i) header += (i ? "," : "") + columns[i];
  if (keep_until >= 0 && fs::exists(path)) {
    std::istringstream in(read_text(path));
    std::string line;
    std::getline(in, line);
    if (line != header) throw Error(path + ": the log has other columns than this trainer writes");
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      std::vector<double> row;
      std::stringstream ls(line);
      std::string cell;
      while (std::getline(ls, cell, ',')) row.push_back(cell.empty() ? NAN : std::strtod(cell.c_str(), nullptr));
      if (row.size() != columns.size()) break;  // a torn last line after a kill
      if (row[0] > keep_until) break;
      rows_.push_back(row);
    }
  }
  // Rewrite what is kept (atomically), then append to it.
  std::ostringstream os;
  os << header << "\n";
  char buf[64];
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%.9g", row[i]);
      os << (i ? "," : "") << buf;
    }
    os << "\n";
  }
  write_text_atomic(path, os.str());
  if (f_) std::fclose(f_);
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) throw Error(path + ": cannot append (" + std::strerror(errno) + ")");
}

void CsvLog::append(const std::vector<double>& row) {
  rows_.push_back(row);
  for (size_t i = 0; i < row.size(); ++i) std::fprintf(f_, i ? ",%.9g" : "%.9g", row[i]);
  std::fputc('\n', f_);
}

void CsvLog::flush() {
  if (f_) std::fflush(f_);
}

double CsvLog::recent_mean(size_t c, size_t n) const {
  double s = 0;
  size_t k = 0;
  for (size_t i = rows_.size() > n ? rows_.size() - n : 0; i < rows_.size(); ++i)
    if (c < rows_[i].size() && std::isfinite(rows_[i][c])) s += rows_[i][c], ++k;
  return k ? s / k : NAN;
}

}  // namespace timfusion::train
