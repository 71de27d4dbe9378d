// timfusion-gst-bench: what the GStreamer element costs on top of the core.
//
//  1. Throughput at 640x480 (visible RGB + IR GRAY8, the same prepared frames
//     for both): the bare Fuser::fuse loop vs the element in a real pipeline
//     (appsrc ! timfusion.vis, appsrc ! timfusion.ir, timfusion ! fakesink
//     sync=false). Overhead = element ms/frame over bare ms/frame.
//  2. Memory: peak and current RSS after 200 and after 2,000 frames through
//     the element. That run uses a tiny ivif-light with 8 channels (random
//     weights, generated here) so that 2,000 frames finish quickly; it runs
//     in a child process so the peak is its own.
// Prints a Markdown table.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "timfusion/torch/networks.h"
#include "timfusion/torch/state_dict.h"
#include "timfusion/arch.h"
#include "timfusion/fuser.h"
#include "timfusion/model_file.h"
#include "timfusion/safetensors.h"
#include "tool_cli.h"

namespace fs = std::filesystem;
namespace tool = timfusion::tool;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kW = 640, kH = 480;
int g_threads = 0;  // --threads: LibTorch threads of the bare loop and the element (0 = one per core)

struct Pair {
  cv::Mat vis_rgb;  // CV_8UC3, RGB order (as the element gets it)
  cv::Mat ir;       // CV_8UC1
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double peak_rss_mb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

long minor_faults() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

double current_rss_mb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// MSRS pairs when the shared data is there, else deterministic noise.
std::vector<Pair> load_pairs(int n) {
  std::vector<Pair> pairs;
  const char* env = std::getenv("TIMFUSION_DATA_DIR");
  fs::path dir = env && *env ? fs::path(env) : fs::path(TIMFUSION_SOURCE_ROOT) / ".." / "shared" / "data";
  dir /= "msrs_sample";
  std::vector<std::string> names;
  if (fs::is_directory(dir / "vis"))
    for (const auto& e : fs::directory_iterator(dir / "vis")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  for (int i = 0; i < n && i < static_cast<int>(names.size()); ++i) {
    cv::Mat v = cv::imread((dir / "vis" / names[i]).string(), cv::IMREAD_COLOR);
    cv::Mat r = cv::imread((dir / "ir" / names[i]).string(), cv::IMREAD_GRAYSCALE);
    if (v.empty() || r.empty()) continue;
    Pair p;
    cv::resize(v, v, cv::Size(kW, kH));
    cv::cvtColor(v, p.vis_rgb, cv::COLOR_BGR2RGB);
    cv::resize(r, p.ir, cv::Size(kW, kH));
    pairs.push_back(p);
  }
  cv::RNG rng(7);
  while (static_cast<int>(pairs.size()) < n) {
    Pair p{cv::Mat(kH, kW, CV_8UC3), cv::Mat(kH, kW, CV_8UC1)};
    rng.fill(p.vis_rgb, cv::RNG::UNIFORM, 0, 256);
    rng.fill(p.ir, cv::RNG::UNIFORM, 0, 256);
    pairs.push_back(p);
  }
  return pairs;
}

std::string default_model() {
  std::string d = timfusion::default_model_path();
  if (fs::exists(d)) return d;
  return std::string(TIMFUSION_FIXTURES_DIR) + "/ivif-light-c48.safetensors";
}

double bare_ms_per_frame_here(const std::string& model, const std::vector<Pair>& pairs, int frames) {
  timfusion::FuserOptions o;
  o.model = model;
  o.threads = g_threads;
  timfusion::Fuser fuser(o);
  fuser.warmup(cv::Size(kW, kH));
  cv::Mat out(kH, kW, CV_8UC3);
  auto t0 = Clock::now();
  for (int i = 0; i < frames; ++i) {
    const Pair& p = pairs[i % pairs.size()];
    fuser.fuse(p.ir, p.vis_rgb, out, timfusion::ChannelOrder::RGB);
  }
  return seconds_since(t0) * 1000.0 / frames;
}

// ivif-light with 8 channels, random weights, written with its metadata.
std::string make_tiny_model() {
  timfusion::ArchSpec spec = timfusion::ArchSpec::named("ivif-light");
  spec.channels = 8;
  torch::manual_seed(1);
  timfusion::nn::TimNet net(spec);
  timfusion::SafetensorsFile file = timfusion::nn::to_safetensors(*net);
  timfusion::describe_model(file, spec);
  std::string path = (fs::temp_directory_path() / ("timfusion-bench-tiny-" + std::to_string(getpid()) +
                                                   ".safetensors")).string();
  timfusion::write_safetensors(path, file);
  return path;
}

// Runs on a worker thread, as the element's streaming thread does: on glibc
// the main thread's heap returns large freed blocks to the kernel, and the
// network's per-frame temporaries (tens of MB at 640x480) then cost page
// faults every frame (measured 3-5x slower on the main thread here).
double bare_ms_per_frame(const std::string& model, const std::vector<Pair>& pairs, int frames) {
  double ms = 0;
  std::thread worker([&] { ms = bare_ms_per_frame_here(model, pairs, frames); });
  worker.join();
  return ms;
}

GstBuffer* wrap(const cv::Mat& m, GstVideoFormat format) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, format, m.cols, m.rows);
  GstBuffer* b = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
  GstVideoFrame f;
  gst_video_frame_map(&f, &info, b, GST_MAP_WRITE);
  const size_t row = m.cols * m.elemSize();
  for (int y = 0; y < m.rows; ++y)
    std::memcpy(static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&f, 0)) + y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0),
                m.ptr(y), row);
  gst_video_frame_unmap(&f);
  return b;
}

struct ElementRun {
  double ms_per_frame = 0;
  double faults_per_frame = 0;  // minor page faults of the whole process per timed frame
  int outputs = 0;
  double peak_at[2] = {0, 0}, current_at[2] = {0, 0};  // after checkpoints[0], [1] frames
};

struct ProbeCtx {
  int count = 0;
  int checkpoints[2] = {-1, -1};
  ElementRun* run = nullptr;
};

GstPadProbeReturn count_output(GstPad*, GstPadProbeInfo*, gpointer user) {
  auto* c = static_cast<ProbeCtx*>(user);
  ++c->count;
  for (int k = 0; k < 2; ++k)
    if (c->count == c->checkpoints[k]) {
      c->run->peak_at[k] = peak_rss_mb();
      c->run->current_at[k] = current_rss_mb();
    }
  return GST_PAD_PROBE_OK;
}

// appsrc (vis, RGB) + appsrc (ir, GRAY8) -> timfusion -> fakesink sync=false.
ElementRun element_run(const std::string& model, const std::vector<Pair>& pairs, int frames, int cp0, int cp1) {
  const std::string vis_caps = "video/x-raw,format=RGB,width=640,height=480,framerate=30/1";
  const std::string ir_caps = "video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1";
  const std::string desc =
      "appsrc name=vis format=time block=true max-buffers=2 caps=\"" + vis_caps + "\" ! f.vis "
      "appsrc name=ir format=time block=true max-buffers=2 caps=\"" + ir_caps + "\" ! f.ir "
      "timfusion name=f threads=" + std::to_string(g_threads) + " model=\"" + model + "\" ! fakesink name=sink sync=false";
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  if (!p) {
    std::fprintf(stderr, "pipeline: %s\n", err ? err->message : "?");
    std::exit(1);
  }
  GstElement* vis = gst_bin_get_by_name(GST_BIN(p), "vis");
  GstElement* ir = gst_bin_get_by_name(GST_BIN(p), "ir");
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  ElementRun run;
  ProbeCtx ctx;
  ctx.checkpoints[0] = cp0;
  ctx.checkpoints[1] = cp1;
  ctx.run = &run;
  GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER, count_output, &ctx, nullptr);

  // Prepared frames; each push shares their memory (no copy in the loop).
  std::vector<GstBuffer*> vb, ib;
  for (const Pair& pr : pairs) {
    vb.push_back(wrap(pr.vis_rgb, GST_VIDEO_FORMAT_RGB));
    ib.push_back(wrap(pr.ir, GST_VIDEO_FORMAT_GRAY8));
  }
  if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::fprintf(stderr, "could not start the pipeline (model %s)\n", model.c_str());
    std::exit(1);
  }
  // The first pair includes negotiation and warm-up: it is not timed.
  const GstClockTime dur = GST_SECOND / 30;
  auto push = [&](int i) {
    GstBuffer* v = gst_buffer_copy(vb[i % vb.size()]);
    GstBuffer* r = gst_buffer_copy(ib[i % ib.size()]);
    GST_BUFFER_PTS(v) = GST_BUFFER_PTS(r) = i * dur;
    GST_BUFFER_DURATION(v) = GST_BUFFER_DURATION(r) = dur;
    gst_app_src_push_buffer(GST_APP_SRC(ir), r);
    gst_app_src_push_buffer(GST_APP_SRC(vis), v);
  };
  push(0);
  while (ctx.count < 1) g_usleep(1000);
  auto t0 = Clock::now();
  const long faults0 = minor_faults();
  for (int i = 1; i <= frames; ++i) push(i);
  gst_app_src_end_of_stream(GST_APP_SRC(vis));
  gst_app_src_end_of_stream(GST_APP_SRC(ir));
  GstBus* bus = gst_element_get_bus(p);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE,
                                             static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  const double secs = seconds_since(t0);
  const long faults = minor_faults() - faults0;
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(m, &e, nullptr);
    std::fprintf(stderr, "pipeline error: %s\n", e->message);
    std::exit(1);
  }
  gst_message_unref(m);
  gst_object_unref(bus);
  run.outputs = ctx.count;
  run.ms_per_frame = secs * 1000.0 / std::max(1, ctx.count - 1);
  run.faults_per_frame = double(faults) / std::max(1, ctx.count - 1);
  gst_element_set_state(p, GST_STATE_NULL);
  for (auto* b : vb) gst_buffer_unref(b);
  for (auto* b : ib) gst_buffer_unref(b);
  gst_object_unref(sinkpad);
  gst_object_unref(sink);
  gst_object_unref(vis);
  gst_object_unref(ir);
  gst_object_unref(p);
  return run;
}

void setup_gst(int* argc, char*** argv) {
  // Use the plugin of this build unless told otherwise.
  const char* old = std::getenv("GST_PLUGIN_PATH");
  std::string path = TIMFUSION_GST_PLUGIN_DIR;
  if (old && *old) path += std::string(":") + old;
  setenv("GST_PLUGIN_PATH", path.c_str(), 1);
  gst_init(argc, argv);
  if (!gst_element_factory_find("timfusion")) {
    std::fprintf(stderr, "timfusion element not found (GST_PLUGIN_PATH=%s)\n", path.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, write_tiny;
  int frames = 30, rss_frames = 2000, rss_first = 200, rounds = 3;
  bool rss_child = false, skip_rss = false, element_only = false;
  CLI::App app{"", "timfusion-gst-bench"};
  tool::setup_app(app, "What the timfusion element costs on top of the core (a Markdown table).",
                  "Throughput at 640x480 of the bare core vs the timfusion element, for the given model and a tiny\n"
                  "C=8 ivif-light (4N frames), then peak/current RSS after 200 and --rss-frames frames through the\n"
                  "element with the tiny model. Bare and element runs alternate for R rounds; the best of each is\n"
                  "shown.");
  app.add_option("--model", model,
                 "weights (default: the default model if installed, else the ivif-light C=48 test fixture)")
      ->type_name("FILE|NAME");
  app.add_option("--frames", frames, "frames per throughput run")->check(CLI::Range(2, 1000000))->type_name("N");
  app.add_option("--rounds", rounds, "alternating bare/element rounds")->check(CLI::Range(1, 1000))->type_name("R");
  app.add_option("--rss-frames", rss_frames, "frames of the memory run")
      ->check(CLI::Range(2, 10000000))
      ->type_name("N");
  app.add_flag("--no-rss", skip_rss, "skip the memory run");
  app.add_option("--threads", g_threads,
                 "LibTorch threads of both (element property threads; 0 = one per core)")
      ->check(CLI::Range(0, 256))
      ->type_name("T");
  app.add_flag("--element-only", element_only,
               "one element run of N frames in this process, printed as the line 'ELEMENT <frames> <ms/frame> "
               "<peak RSS MB> <page faults/frame>' (for scripts/speed_table.sh)");
  app.add_flag("--rss-child", rss_child, "internal: the memory run, in its own process")->group("");
  app.add_option("--write-tiny", write_tiny, "internal: write the tiny C=8 model to FILE and exit")->group("");
  tool::parse_or_exit(app, argc, argv);
  return tool::guarded_main("timfusion-gst-bench", [&]() -> int {
  if (!write_tiny.empty()) {
    fs::rename(make_tiny_model(), write_tiny);
    return 0;
  }
  rss_first = std::min(rss_first, rss_frames);
  setup_gst(&argc, &argv);
  const std::vector<Pair> pairs = load_pairs(8);

  if (rss_child) {  // the memory run, in its own process
    std::string tiny = make_tiny_model();
    // element_run pushes one untimed pair plus `frames`: rss_frames outputs in all.
    ElementRun r = element_run(tiny, pairs, rss_frames - 1, rss_first, rss_frames);
    std::printf("RSS %d %.1f %.1f %.1f %.1f %.3f\n", r.outputs, r.peak_at[0], r.peak_at[1], r.current_at[0],
                r.current_at[1], r.ms_per_frame);
    fs::remove(tiny);
    return 0;
  }

  if (model.empty()) model = default_model();
  if (element_only) {  // nothing else ran in this process: its peak RSS is the pipeline's
    const ElementRun r = element_run(model, pairs, frames, -1, -1);
    std::printf("ELEMENT %d %.2f %.1f %.1f\n", r.outputs - 1, r.ms_per_frame, peak_rss_mb(), r.faults_per_frame);
    return 0;
  }
  struct Row {
    std::string label, model;
    int frames;
    double bare = 0;
    ElementRun el;
  };
  const std::string tiny = make_tiny_model();
  std::vector<Row> rows = {{"given", model, frames}, {"ivif-light C=8 (tiny)", tiny, frames * 4}};
  {
    timfusion::FuserOptions o;
    o.model = model;
    rows[0].label = timfusion::Fuser(o).arch().name + " C=" + std::to_string(timfusion::Fuser(o).arch().channels);
  }
  // Alternating rounds, best of each: robust to other load on the machine.
  for (Row& r : rows) {
    std::fprintf(stderr, "throughput: %d rounds of %d frames at %dx%d, %s (%s)\n", rounds, r.frames, kW, kH,
                 r.label.c_str(), r.model.c_str());
    for (int k = 0; k < rounds; ++k) {
      const double b = bare_ms_per_frame(r.model, pairs, r.frames);
      const ElementRun e = element_run(r.model, pairs, r.frames, -1, -1);
      std::fprintf(stderr, "  round %d: bare %.1f ms/frame, element %.1f ms/frame\n", k + 1, b, e.ms_per_frame);
      if (k == 0 || b < r.bare) r.bare = b;
      if (k == 0 || e.ms_per_frame < r.el.ms_per_frame) r.el = e;
    }
  }
  fs::remove(tiny);

  double peak200 = 0, peakN = 0, cur200 = 0, curN = 0, tiny_ms = 0;
  int rss_outputs = 0;
  if (!skip_rss) {
    std::fprintf(stderr, "memory: %d frames through the element with a tiny C=8 ivif-light\n", rss_frames);
    std::string cmd = std::string("\"") + argv[0] + "\" --rss-child --rss-frames " + std::to_string(rss_frames);
    FILE* child = popen(cmd.c_str(), "r");
    char line[512];
    while (child && std::fgets(line, sizeof line, child))
      if (std::sscanf(line, "RSS %d %lf %lf %lf %lf %lf", &rss_outputs, &peak200, &peakN, &cur200, &curN, &tiny_ms) ==
          6)
        break;
    if (child) pclose(child);
  }

  timfusion::FuserOptions po;
  po.model = model;
  po.threads = g_threads;
  timfusion::Fuser probe(po);
  std::printf("\n## timfusion-gst-bench %s (%dx%d, visible RGB + IR GRAY8, %s, %d threads, best of %d rounds)\n\n",
              TIMFUSION_VERSION, kW, kH, timfusion::device_name(probe.device()), probe.threads(), rounds);
  std::printf("| measurement | value |\n|---|---|\n");
  for (const Row& r : rows) {
    std::printf("| %s: bare `Fuser::fuse` loop | %.1f ms/frame (%.2f fps), %d frames |\n", r.label.c_str(), r.bare,
                1000.0 / r.bare, r.frames);
    std::printf("| %s: appsrc ! timfusion ! fakesink sync=false | %.1f ms/frame (%.2f fps), %d frames, %.0f page "
                "faults/frame |\n",
                r.label.c_str(), r.el.ms_per_frame, 1000.0 / r.el.ms_per_frame, r.el.outputs - 1,
                r.el.faults_per_frame);
    std::printf("| %s: element overhead | %+.1f %% (%+.2f ms/frame) |\n", r.label.c_str(),
                100.0 * (r.el.ms_per_frame - r.bare) / r.bare, r.el.ms_per_frame - r.bare);
  }
  if (!skip_rss) {
    std::printf("| memory run model | ivif-light, channels=8, random weights (%.1f ms/frame in the element) |\n",
                tiny_ms);
    std::printf("| peak RSS after %d frames | %.1f MB |\n", rss_first, peak200);
    std::printf("| peak RSS after %d frames | %.1f MB (%+.1f MB) |\n", rss_outputs, peakN, peakN - peak200);
    std::printf("| current RSS after %d / %d frames | %.1f / %.1f MB (%+.1f MB) |\n", rss_first, rss_outputs, cur200,
                curN, curN - cur200);
  }
  return 0;
  });
}
