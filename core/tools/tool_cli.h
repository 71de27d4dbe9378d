// timfusion tools: one command-line convention for every tool, on CLI11
// (Debian's libcli11-dev, header-only: a well-kept parser with typed,
// validated options instead of five hand-written loops).
//
//   --help, --version     print to stdout, exit 0
//   a usage error         one line on stderr naming the option, exit 2
//   any other failure     one line on stderr ("<tool>: <what went wrong>"), exit 1
//
// A tool builds a CLI::App with make_app(), parses with parse_or_exit() and
// runs its body inside guarded_main(), which catches everything at the
// boundary: timfusion::Error, c10::Error (when the tool includes LibTorch),
// cv::Exception and any std::exception.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <opencv2/core.hpp>

#include "timfusion/error.h"
#include "timfusion/version.h"

namespace timfusion::tool {

inline std::string version_line(const std::string& tool) { return tool + " " TIMFUSION_VERSION; }

[[noreturn]] inline void usage_error(const std::string& tool, const std::string& message) {
  std::fprintf(stderr, "%s: %s (see %s --help)\n", tool.c_str(), message.c_str(), tool.c_str());
  std::exit(2);
}

// An App with --help and --version: summary is the line above the usage, details
// (optional) the text after the option list.
inline void setup_app(CLI::App& app, const std::string& summary, const std::string& details = "") {
  app.description(summary);
  if (!details.empty()) app.footer("\n" + details);
  app.set_help_flag("-h,--help", "print this help and exit");
  app.set_version_flag("--version", version_line(app.get_name()), "print the version and exit");
  app.get_formatter()->column_width(30);
  // Unknown arguments are collected and reported by parse_or_exit before a
  // missing required option: "unknown option" is the more useful message.
  app.allow_extras();
}

inline std::string unknown_arguments(const CLI::App& app) {
  std::string s;
  for (const auto& r : app.remaining()) s += (s.empty() ? "\"" : " \"") + r + "\"";
  return s;
}

// Parses argv; --help / --version print and exit 0, usage errors exit 2 with one line.
inline void parse_or_exit(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    if (!app.remaining().empty()) usage_error(app.get_name(), "unknown option " + unknown_arguments(app));
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    std::exit(0);
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    std::exit(0);
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    std::exit(0);
  } catch (const CLI::RequiredError& e) {
    if (!app.remaining().empty()) usage_error(app.get_name(), "unknown option " + unknown_arguments(app));
    usage_error(app.get_name(), e.what());
  } catch (const CLI::ParseError& e) {
    usage_error(app.get_name(), e.what());
  } catch (const timfusion::Error& e) {  // thrown by an option's own check
    usage_error(app.get_name(), e.what());
  }
}

// The first line of a message (c10 and OpenCV append source locations and backtraces).
inline std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.empty() ? "unknown error" : line;
}

// "<path>: cannot create directories: Read-only file system" from a
// filesystem_error ("filesystem error: cannot create directories: Read-only
// file system [<path>]").
inline std::string filesystem_message(const std::filesystem::filesystem_error& e) {
  std::string what = first_line(e.what());
  const std::string prefix = "filesystem error: ";
  if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
  if (const size_t bracket = what.find(" ["); bracket != std::string::npos) what.resize(bracket);
  std::string s = (e.path1().empty() ? std::string() : e.path1().string() + ": ") + what;
  if (e.code() == std::errc::too_many_symbolic_link_levels) s += " (a symlink loop in the path)";
  if (e.code() == std::errc::read_only_file_system || e.code() == std::errc::permission_denied)
    s += " (choose a folder you can write to)";
  return s;
}

// Runs body() and turns anything it throws into one line on stderr and exit 1.
template <class Body>
int guarded_main(const std::string& tool, Body&& body) {
  // On a terminal, a progress bar may be half drawn: the message gets its own line.
  const std::string who = (isatty(fileno(stderr)) ? "\r\033[K" : "") + tool;
  try {
    return body();
  } catch (const timfusion::Error& e) {
    std::fprintf(stderr, "%s: %s\n", who.c_str(), e.what());
#ifdef C10_UTIL_EXCEPTION_H_
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "%s: LibTorch error: %s\n", who.c_str(), first_line(e.what_without_backtrace()).c_str());
#endif
  } catch (const cv::Exception& e) {
    std::fprintf(stderr, "%s: OpenCV error: %s%s%s\n", who.c_str(), first_line(e.err).c_str(),
                 e.func.empty() ? "" : " in ", e.func.c_str());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory\n", who.c_str());
  } catch (const std::filesystem::filesystem_error& e) {
    // A folder that cannot be made or read (read-only, a symlink loop): its
    // path and the system's reason, not "internal error: filesystem error".
    std::fprintf(stderr, "%s: %s\n", who.c_str(), filesystem_message(e).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", who.c_str(), first_line(e.what()).c_str());
  } catch (...) {
    std::fprintf(stderr, "%s: internal error (unknown exception)\n", who.c_str());
  }
  return 1;
}

}  // namespace timfusion::tool
