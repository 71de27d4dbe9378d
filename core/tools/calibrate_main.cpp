// timfusion-calibrate: estimate the IR->visible homography of a camera rig
// from its own frames and write the element's calibration file.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <opencv2/imgproc.hpp>

#include "calibrate_capture.h"
#include "timfusion/calibration.h"
#include "timfusion/output_guard.h"
#include "timfusion/pairs.h"
#include "timfusion/registration.h"

#ifndef TIMFUSION_VERSION
#define TIMFUSION_VERSION "unknown"
#endif

using namespace timfusion;

namespace {

const char* kTool = "timfusion-calibrate";

const char* kDetails =
    "Point both cameras at a scene with plenty of edges at the working distance\n"
    "(buildings, poles, people, parked cars), keep the rig still, and give a few\n"
    "frame pairs. The estimate works on edge structure, so thermal and visible\n"
    "contrast may differ; it starts from the two resolutions (IR frame stretched\n"
    "onto the visible frame) and searches scales min-scale..max-scale and centre\n"
    "offsets up to max-shift of the visible frame around it.\n"
    "\n"
    "The output is the element's calibration file (JSON): \"ir-homography\" (IR\n"
    "pixel -> visible pixel, row-major 3x3) plus the structure correlation and\n"
    "its distinctness, the\n"
    "residual error estimate, the agreement across pairs and the frames used:\n"
    "  gst-launch-1.0 timfusion calibration-file=rig.json ...\n"
    "\n"
    "With --checkerboard COLSxROWS the frames show a checkerboard instead (heated for\n"
    "the thermal camera, so that its squares differ in temperature): its inner\n"
    "corners are found in both frames of each pair and the homography is fitted\n"
    "to all of them. Give several pairs with the board at different places, at the\n"
    "working distance.\n"
    "\n"
    "Exit status: 0 written, 1 refused (not enough common structure) or failed,\n"
    "2 usage error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "%s: %s (see %s --help)\n", kTool, msg.c_str(), kTool);
  std::exit(2);
}

std::vector<CalibrationPair> load_pairs(const std::string& ir, const std::string& vis, int max_pairs) {
  std::vector<CalibrationPair> out;
  if (is_directory(ir) != is_directory(vis))
    throw Error("--ir and --vis must both be image files or both be folders");
  if (!is_directory(ir)) {
    out.push_back({ir, read_image(ir, -1), read_image(vis, -1), ir, vis});
    return out;
  }
  std::vector<ImagePair> list = list_pairs(ir, vis);
  // Many frames of one scene add little: take max_pairs spread over the list.
  std::vector<ImagePair> chosen;
  const size_t n = std::min(list.size(), size_t(max_pairs));
  for (size_t i = 0; i < n; ++i) chosen.push_back(list[i * list.size() / n]);
  for (const auto& p : chosen) out.push_back({p.name, read_image(p.ir, -1), read_image(p.vis, -1), p.ir, p.vis});
  return out;
}

// The visible frame with the registered IR over it (red-yellow false colour
// at 50 %), for checking the result by eye.
cv::Mat overlay(const CalibrationPair& p, const Homography& h) {
  cv::Mat vis = p.vis, ir = p.ir;
  if (vis.channels() == 1) cv::cvtColor(vis, vis, cv::COLOR_GRAY2BGR);
  if (vis.channels() == 4) cv::cvtColor(vis, vis, cv::COLOR_BGRA2BGR);
  if (vis.depth() != CV_8U) cv::normalize(vis, vis, 0, 255, cv::NORM_MINMAX, CV_8U);
  if (ir.channels() > 1) cv::cvtColor(ir, ir, ir.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  if (ir.depth() != CV_8U) cv::normalize(ir, ir, 0, 255, cv::NORM_MINMAX, CV_8U);
  cv::Mat warped = warp_ir(ir, h, vis.size()), colour;
  cv::applyColorMap(warped, colour, cv::COLORMAP_HOT);
  cv::Mat out;
  cv::addWeighted(vis, 0.5, colour, 0.5, 0, out);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Estimates the homography that maps IR pixels to visible pixels from frame pairs of a camera rig "
               "and writes the timfusion element's calibration file.",
               kTool};
  app.footer(std::string("\n") + kDetails);
  app.set_version_flag("--version", std::string(kTool) + " " TIMFUSION_VERSION, "print the version and exit");
  app.get_formatter()->column_width(32);

  std::string ir, vis, ir_src, vis_src, output, overlay_path;
  int frames = 5, max_pairs = 10;
  double seconds = 2.0;
  CalibrationOptions o;
  bool quiet = false;
  app.add_option("--ir", ir, "IR image file, or folder of IR frames (pairs matched by base name)");
  app.add_option("--vis", vis, "visible image file, or folder of visible frames");
  app.add_option("--ir-src", ir_src,
                 "capture instead: GStreamer source fragment of the IR camera, e.g. \"v4l2src device=/dev/video2\"");
  app.add_option("--vis-src", vis_src, "capture instead: GStreamer source fragment of the visible camera");
  app.add_option("--frames", frames, "capture: frame pairs to take (default 5)")->check(CLI::Range(1, 100));
  app.add_option("--seconds", seconds, "capture: spread them over this many seconds (default 2)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--max-pairs", max_pairs, "folders: use at most this many pairs, spread over the list (default 10)")
      ->check(CLI::Range(1, 1000));
  app.add_option("-o,--output", output, "calibration file to write (JSON)")->required();
  app.add_option("--overlay", overlay_path, "also write a check image: the registered IR blended over the visible");
  app.add_option("--min-scale", o.min_scale, "smallest IR-to-visible scale searched, relative to the resolution guess "
                                             "(default 0.5)")
      ->check(CLI::Range(0.05, 20.0));
  app.add_option("--max-scale", o.max_scale, "largest scale searched (default 2)")->check(CLI::Range(0.05, 20.0));
  app.add_option("--max-shift", o.max_shift, "largest centre offset searched, fraction of the visible frame "
                                             "(default 0.15)")
      ->check(CLI::Range(0.0, 0.45));
  app.add_option("--min-correlation", o.min_correlation,
                 "refuse below this structure correlation (default 0.20)")
      ->check(CLI::Range(-1.0, 1.0));
  app.add_option("--min-distinctness", o.min_distinctness,
                 "refuse when shifting the estimate by 3 % of the frame lowers the correlation by less than "
                 "this (default 0.17)")
      ->check(CLI::Range(-1.0, 1.0));
  app.add_option("--max-stability", o.max_stability_px,
                 "refuse when the refinement, restarted about 1 % of the frame away, ends more than this many visible "
                 "pixels from the estimate (default 1.0; negative: no check)")
      ->check(CLI::Range(-1.0, 1000.0));
  app.add_option("--max-side", o.max_side, "register at most at this size, longer side in pixels (default 1024)")
      ->check(CLI::Range(64, 16384));
  std::string board;
  CheckerboardOptions board_options;
  app.add_option("--checkerboard", board,
                 "calibrate on a (heated) checkerboard instead of scene structure: its inner corners per row x "
                 "column, e.g. 9x6 for a board of 10x7 squares")
      ->type_name("COLSxROWS");
  app.add_option("--max-corner-error", board_options.max_rms_px,
                 "checkerboard: refuse when the corners fit worse than this RMS in visible pixels (default 2)")
      ->check(CLI::Range(0.01, 100.0));
  app.add_flag("-q,--quiet", quiet, "print nothing but errors");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    usage_error(e.what());
  }
  const bool files = !ir.empty() || !vis.empty(), capture = !ir_src.empty() || !vis_src.empty();
  if (files == capture) usage_error("give either --ir and --vis (files or folders) or --ir-src and --vis-src");
  if (files && (ir.empty() || vis.empty())) usage_error("--ir and --vis go together");
  if (capture && (ir_src.empty() || vis_src.empty())) usage_error("--ir-src and --vis-src go together");
  if (o.min_scale > o.max_scale) usage_error("--min-scale is larger than --max-scale");
  if (!board.empty()) {
    try {
      board_options.inner_corners = parse_checkerboard(board);
    } catch (const Error& e) {
      usage_error(std::string("--") + e.what());
    }
  }

  try {
    if (files) {
      refuse_output_over_inputs(output, {ir, vis}, "output file");
      if (!overlay_path.empty()) refuse_output_over_inputs(overlay_path, {ir, vis}, "overlay file");
    }
    std::vector<CalibrationPair> pairs =
        files ? load_pairs(ir, vis, max_pairs) : capture_pairs(ir_src, vis_src, frames, seconds);
    if (!quiet)
      std::printf("%s: %zu frame pair(s), IR %dx%d, visible %dx%d\n", kTool, pairs.size(), pairs[0].ir.cols,
                  pairs[0].ir.rows, pairs[0].vis.cols, pairs[0].vis.rows);
    const Calibration c = board.empty() ? calibrate(pairs, o) : calibrate_checkerboard(pairs, board_options);
    write_calibration(output, c, TIMFUSION_VERSION);
    if (!overlay_path.empty()) write_image(overlay_path, overlay(pairs[0], c.h));
    if (!quiet) {
      int used = 0;
      for (const auto& p : c.pairs) used += p.used;
      std::printf("ir-homography=");
      for (int i = 0; i < 9; ++i) std::printf("%s%.8g", i ? ";" : "", c.h.m[i]);
      if (c.method == "checkerboard")
        std::printf("\ncheckerboard corners: RMS error %.2f px, spread across pairs %.2f px, confidence %.2f (%d of %zu "
                    "pairs used)\nwrote %s\n",
                    c.residual_px, c.spread_px, c.confidence, used, c.pairs.size(), output.c_str());
      else
        std::printf("\ncorrelation %.3f, distinctness %.3f, residual %.2f px, spread across pairs %.2f px, stability %.2f px, confidence %.2f (%d of %zu "
                    "pairs used)\nwrote %s\n",
                    c.correlation, c.distinctness, c.residual_px, c.spread_px, c.stability_px, c.confidence, used, c.pairs.size(), output.c_str());
      for (const auto& p : c.pairs)
        if (!p.used && !p.problem.empty()) std::printf("  %s: not used: %s\n", p.name.c_str(), p.problem.c_str());
    }
    return 0;
  } catch (const CalibrationRefused& e) {
    std::fprintf(stderr, "%s: refused: %s\n", kTool, e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", kTool, e.what());
    return 1;
  }
}
