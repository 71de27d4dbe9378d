#include "gst_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include <gst/app/gstappsink.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "timfusion/fuser.h"
#include "timfusion/registration.h"

namespace tfgst_test {

namespace {

// GStreamer is initialised once for the whole test executable.
class GstEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* g_env = ::testing::AddGlobalTestEnvironment(new GstEnvironment);

int plane_type(GstVideoFormat f, int plane) {
  switch (f) {
    case GST_VIDEO_FORMAT_GRAY8: return CV_8UC1;
    case GST_VIDEO_FORMAT_GRAY16_LE: return CV_16UC1;
    case GST_VIDEO_FORMAT_RGB:
    case GST_VIDEO_FORMAT_BGR: return CV_8UC3;
    case GST_VIDEO_FORMAT_RGBx:
    case GST_VIDEO_FORMAT_BGRx:
    case GST_VIDEO_FORMAT_RGBA:
    case GST_VIDEO_FORMAT_BGRA: return CV_8UC4;
    case GST_VIDEO_FORMAT_I420: return CV_8UC1;
    case GST_VIDEO_FORMAT_NV12: return plane == 0 ? CV_8UC1 : CV_8UC2;
    default: ADD_FAILURE() << "unexpected format " << gst_video_format_to_string(f); return CV_8UC1;
  }
}

cv::Mat raw(const cv::Mat& m) { return cv::Mat(m.rows, m.cols * static_cast<int>(m.elemSize()), CV_8UC1, m.data, m.step); }

bool is_rgb_order(GstVideoFormat f) {
  return f == GST_VIDEO_FORMAT_RGB || f == GST_VIDEO_FORMAT_RGBx || f == GST_VIDEO_FORMAT_RGBA;
}

timfusion::Fuser& fuser_for(const std::string& model, const std::string& arch) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<timfusion::Fuser>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& f = cache[model + "|" + arch];
  if (!f) {
    timfusion::FuserOptions o;
    o.model = model;
    o.arch = arch;
    o.device = timfusion::Device::Cpu;
    // As the element's default (threads=0: each frame whole on one core of the
    // shared CPU); more intra-op threads may sum in another order.
    o.threads = 1;
    f = std::make_unique<timfusion::Fuser>(o);
  }
  return *f;
}

}  // namespace

std::string model_light() { return tftest::fixtures("ivif-light-c48.safetensors"); }
std::string model_light_nometa() { return tftest::fixtures("ivif-light-c48-nometa.safetensors"); }
std::string model_tiny() { return tftest::fixtures("ops-sepconv-c8.safetensors"); }
std::string model_full_c8() { return tftest::fixtures("ivif-full-c8.safetensors"); }

int Frame::width() const { return planes.empty() ? 0 : planes[0].cols; }
int Frame::height() const { return planes.empty() ? 0 : planes[0].rows; }

Frame make_vis(const cv::Mat& bgr, GstVideoFormat format) {
  Frame f;
  f.format = format;
  const int w = bgr.cols, h = bgr.rows;
  cv::Mat m;
  switch (format) {
    case GST_VIDEO_FORMAT_GRAY8: cv::cvtColor(bgr, m, cv::COLOR_BGR2GRAY); break;
    case GST_VIDEO_FORMAT_RGB: cv::cvtColor(bgr, m, cv::COLOR_BGR2RGB); break;
    case GST_VIDEO_FORMAT_BGR: m = bgr.clone(); break;
    case GST_VIDEO_FORMAT_RGBx:
    case GST_VIDEO_FORMAT_RGBA:
    case GST_VIDEO_FORMAT_BGRx:
    case GST_VIDEO_FORMAT_BGRA: {
      cv::cvtColor(bgr, m, is_rgb_order(format) ? cv::COLOR_BGR2RGBA : cv::COLOR_BGR2BGRA);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) m.at<cv::Vec4b>(y, x)[3] = static_cast<uchar>((x * 7 + y * 3) & 0xff);
      break;
    }
    case GST_VIDEO_FORMAT_I420:
    case GST_VIDEO_FORMAT_NV12: {
      cv::Mat yuv;
      cv::cvtColor(bgr, yuv, cv::COLOR_BGR2YUV_I420);  // Y, then U (w/2 x h/2), then V
      cv::Mat y = yuv.rowRange(0, h).clone();
      const int cw = w / 2, ch = h / 2;
      cv::Mat u(ch, cw, CV_8UC1, yuv.ptr(h)), v(ch, cw, CV_8UC1, yuv.ptr(h) + cw * ch);
      f.planes.push_back(y);
      if (format == GST_VIDEO_FORMAT_I420) {
        f.planes.push_back(u.clone());
        f.planes.push_back(v.clone());
      } else {
        cv::Mat uv;
        cv::merge(std::vector<cv::Mat>{u.clone(), v.clone()}, uv);
        f.planes.push_back(uv);
      }
      return f;
    }
    default: ADD_FAILURE() << "make_vis: unexpected format"; break;
  }
  f.planes.push_back(m);
  return f;
}

Frame make_ir(const cv::Mat& gray, GstVideoFormat format) {
  Frame f;
  f.format = format;
  cv::Mat m;
  switch (format) {
    case GST_VIDEO_FORMAT_GRAY8: m = gray.clone(); break;
    case GST_VIDEO_FORMAT_GRAY16_LE: gray.convertTo(m, CV_16UC1, 257.0); break;
    case GST_VIDEO_FORMAT_RGB:
    case GST_VIDEO_FORMAT_BGR: {
      // Channels differ (R = gray, G = gray/2, B = 255-gray), so taking the
      // luma with the wrong channel order gives a different image.
      std::vector<cv::Mat> ch(3);
      ch[0] = gray.clone();
      ch[1] = gray / 2;
      ch[2] = 255 - gray;
      cv::merge(ch, m);
      break;
    }
    default: ADD_FAILURE() << "make_ir: unexpected format"; break;
  }
  f.planes.push_back(m);
  return f;
}

std::string caps_string(GstVideoFormat format, int width, int height, int fps_n, int fps_d) {
  return "video/x-raw,format=" + std::string(gst_video_format_to_string(format)) + ",width=" + std::to_string(width) +
         ",height=" + std::to_string(height) + ",framerate=" + std::to_string(fps_n) + "/" + std::to_string(fps_d);
}

GstBuffer* to_buffer(const Frame& f, GstClockTime pts, GstClockTime duration) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, f.format, f.width(), f.height());
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
  gst_buffer_memset(buf, 0, 0xAB, gst_buffer_get_size(buf));  // padding bytes must not matter
  GstVideoFrame vf;
  EXPECT_TRUE(gst_video_frame_map(&vf, &info, buf, GST_MAP_WRITE));
  EXPECT_EQ(static_cast<guint>(f.planes.size()), GST_VIDEO_FRAME_N_PLANES(&vf));
  for (size_t p = 0; p < f.planes.size(); ++p) {
    cv::Mat src = raw(f.planes[p]);
    auto* dst = static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&vf, p));
    const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&vf, p);
    for (int y = 0; y < src.rows; ++y) std::memcpy(dst + static_cast<size_t>(y) * stride, src.ptr(y), src.cols);
  }
  gst_video_frame_unmap(&vf);
  GST_BUFFER_PTS(buf) = pts;
  GST_BUFFER_DURATION(buf) = duration;
  return buf;
}

Frame from_buffer(GstBuffer* buf, const GstVideoInfo& info_in) {
  GstVideoInfo info = info_in;
  Frame f;
  f.format = GST_VIDEO_INFO_FORMAT(&info);
  GstVideoFrame vf;
  if (!gst_video_frame_map(&vf, &info, buf, GST_MAP_READ)) {
    ADD_FAILURE() << "cannot map output buffer";
    return f;
  }
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&vf); ++p) {
    int comp = 0;
    for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(&vf); ++c)
      if (GST_VIDEO_FORMAT_INFO_PLANE(info.finfo, c) == p) {
        comp = static_cast<int>(c);
        break;
      }
    const int rows = GST_VIDEO_FRAME_COMP_HEIGHT(&vf, comp);
    const int cols = GST_VIDEO_FRAME_COMP_WIDTH(&vf, comp);
    cv::Mat view(rows, cols, plane_type(f.format, static_cast<int>(p)), GST_VIDEO_FRAME_PLANE_DATA(&vf, p),
                 static_cast<size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(&vf, p)));
    f.planes.push_back(view.clone());
  }
  gst_video_frame_unmap(&vf);
  return f;
}

Frame reference_fuse(const std::string& model, const std::string& arch, const Frame& ir, const Frame& vis,
                     const std::string& homography) {
  timfusion::Fuser& fuser = fuser_for(model, arch);
  cv::Mat ir_m = ir.planes[0];
  if (ir_m.channels() == 3)
    cv::cvtColor(ir_m, ir_m, ir.format == GST_VIDEO_FORMAT_RGB ? cv::COLOR_RGB2GRAY : cv::COLOR_BGR2GRAY);
  timfusion::Homography h;
  if (!homography.empty()) h = timfusion::Homography::parse(homography);
  ir_m = timfusion::warp_ir(ir_m, h, vis.planes[0].size());
  Frame out;
  out.format = vis.format;
  cv::Mat y;
  fuser.fuse(ir_m, vis.planes[0], y,
             is_rgb_order(vis.format) ? timfusion::ChannelOrder::RGB : timfusion::ChannelOrder::BGR);
  out.planes.push_back(y);
  for (size_t p = 1; p < vis.planes.size(); ++p) out.planes.push_back(vis.planes[p].clone());
  return out;
}

int max_abs_diff(const Frame& a, const Frame& b) {
  if (a.planes.size() != b.planes.size()) return 1 << 20;
  double m = 0;
  for (size_t p = 0; p < a.planes.size(); ++p) {
    if (a.planes[p].size() != b.planes[p].size() || a.planes[p].type() != b.planes[p].type()) return 1 << 20;
    m = std::max(m, cv::norm(raw(a.planes[p]), raw(b.planes[p]), cv::NORM_INF));
  }
  return static_cast<int>(m);
}

bool equal(const Frame& a, const Frame& b) { return max_abs_diff(a, b) == 0; }

std::vector<std::string> msrs_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(tftest::data("msrs_sample/vis")))
    if (e.path().extension() == ".png") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

cv::Mat msrs_vis(int w, int h, int index) {
  cv::Mat m = cv::imread(tftest::data("msrs_sample/vis/" + msrs_names().at(index)), cv::IMREAD_COLOR);
  EXPECT_FALSE(m.empty());
  cv::Mat r;
  cv::resize(m, r, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  return r;
}

cv::Mat msrs_ir(int w, int h, int index) {
  cv::Mat m = cv::imread(tftest::data("msrs_sample/ir/" + msrs_names().at(index)), cv::IMREAD_GRAYSCALE);
  EXPECT_FALSE(m.empty());
  cv::Mat r;
  cv::resize(m, r, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  return r;
}

// --- pipelines ---------------------------------------------------------

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

Output::~Output() {
  for (auto* b : buffers) gst_buffer_unref(b);
  if (caps) gst_caps_unref(caps);
}

BusLog::~BusLog() {
  for (auto* s : element_messages) gst_structure_free(s);
}

int BusLog::count_element(const char* name) const {
  int n = 0;
  for (auto* s : element_messages) n += gst_structure_has_name(s, name) ? 1 : 0;
  return n;
}

static std::string error_text(GstMessage* m, bool warning) {
  GError* err = nullptr;
  gchar* dbg = nullptr;
  if (warning)
    gst_message_parse_warning(m, &err, &dbg);
  else
    gst_message_parse_error(m, &err, &dbg);
  std::string s = std::string(err ? err->message : "") + " | " + (dbg ? dbg : "");
  if (err) g_error_free(err);
  g_free(dbg);
  return s;
}

void drain_bus(GstElement* pipeline, BusLog& log, double timeout_s, bool stop_on_eos) {
  GstBus* bus = gst_element_get_bus(pipeline);
  const double end = now_s() + timeout_s;
  while (now_s() < end) {
    GstMessage* m = gst_bus_timed_pop(bus, 20 * GST_MSECOND);
    if (!m) continue;
    bool stop = false;
    switch (GST_MESSAGE_TYPE(m)) {
      case GST_MESSAGE_EOS:
        log.eos = true;
        stop = stop_on_eos;
        break;
      case GST_MESSAGE_ERROR:
        log.errors.push_back(error_text(m, false));
        stop = true;
        break;
      case GST_MESSAGE_WARNING: log.warnings.push_back(error_text(m, true)); break;
      case GST_MESSAGE_ELEMENT:
        if (gst_message_get_structure(m))
          log.element_messages.push_back(gst_structure_copy(gst_message_get_structure(m)));
        break;
      case GST_MESSAGE_LATENCY:
        ++log.latency_messages;
        gst_bin_recalculate_latency(GST_BIN(pipeline));
        break;
      case GST_MESSAGE_QOS:
        if (GST_MESSAGE_SRC(m) && g_str_equal(G_OBJECT_TYPE_NAME(GST_MESSAGE_SRC(m)), "GstTimFusion"))
          ++log.qos_messages;
        break;
      default: break;
    }
    gst_message_unref(m);
    if (stop) break;
  }
  gst_object_unref(bus);
}

namespace {
struct SinkCtx {
  Output* out;
  std::mutex mu;
  double t0;
};
GstFlowReturn on_new_sample(GstAppSink* sink, gpointer user) {
  auto* ctx = static_cast<SinkCtx*>(user);
  GstSample* s = gst_app_sink_pull_sample(sink);
  if (!s) return GST_FLOW_OK;
  std::lock_guard<std::mutex> lock(ctx->mu);
  ctx->out->buffers.push_back(gst_buffer_ref(gst_sample_get_buffer(s)));
  ctx->out->arrival_s.push_back(now_s() - ctx->t0);
  if (ctx->out->caps) gst_caps_unref(ctx->out->caps);
  ctx->out->caps = gst_caps_ref(gst_sample_get_caps(s));
  gst_sample_unref(s);
  return GST_FLOW_OK;
}
}  // namespace

void collect_appsink(GstElement* pipeline, Output& out, const char* name) {
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), name);
  if (!sink) return;
  auto* ctx = new SinkCtx{&out, {}, now_s()};
  GstAppSinkCallbacks cb{};
  cb.new_sample = on_new_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, ctx, [](gpointer p) { delete static_cast<SinkCtx*>(p); });
  gst_object_unref(sink);
}

void run_pipeline(const std::string& description, RunResult& r, double timeout_s,
                  const std::function<void(GstElement*)>& before_play) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(description.c_str(), &err);
  if (err) {
    r.parse_error = err->message;
    g_error_free(err);
    if (p) gst_object_unref(p);
    return;
  }
  r.parsed = true;
  collect_appsink(p, r.out);
  if (before_play) before_play(p);
  r.start = gst_element_set_state(p, GST_STATE_PLAYING);
  drain_bus(p, r.bus, r.start == GST_STATE_CHANGE_FAILURE ? 1.0 : timeout_s);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

}  // namespace tfgst_test
