// timfusion GStreamer element: which model the frames use. Loaded at
// NULL->READY (and kept across state cycles while the model properties are
// unchanged); "model" set while READY or above is loaded in the background
// and swapped in between frames. The engines themselves are in
// timfusion_model.*.
#include <exception>
#include <filesystem>
#include <system_error>

#include "gsttimfusion_private.h"
#include "timfusion/model_file.h"

static void post_model_loaded(GstTimFusion* self, const tfgst::Engine& e, gboolean swap) {
  GstStructure* s = gst_structure_new("timfusion-model-loaded", "model", G_TYPE_STRING, e.path().c_str(), "device",
                                      G_TYPE_STRING, e.device_name(), "load-ms", G_TYPE_DOUBLE, e.load_ms(), "swap",
                                      G_TYPE_BOOLEAN, swap, "engine", G_TYPE_STRING, e.description().c_str(), nullptr);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

static void log_device(GstTimFusion* self, const tfgst::Engine& e) {
  const auto requested = e.options().device;
  GST_INFO_OBJECT(self, "model loaded in %.0f ms (device=%s requested): %s", e.load_ms(),
                  timfusion::device_name(requested), e.description().c_str());
  if (requested == timfusion::Device::Auto && std::string(e.device_name()) == "cpu" &&
      timfusion::Fuser::cuda_available() == false)
    GST_INFO_OBJECT(self, "device=auto: no usable CUDA device in this build/machine, inference runs on the CPU");
}

// What the model properties ask for now.
static timfusion::FuserOptions requested_options(tfgst::State* st) {
  std::lock_guard<std::mutex> lock(st->props_mu);
  return st->options;
}

static uint64_t new_generation(tfgst::State* st) {
  std::lock_guard<std::mutex> lock(st->engine_mu);
  return ++st->next_generation;
}

// Makes engine the one the next frames use (the old one is freed when its
// last frame is done); the time estimates start over.
static void install_engine(GstTimFusion* self, const std::shared_ptr<tfgst::Engine>& engine, gboolean swap) {
  tfgst::State* st = self->st;
  std::shared_ptr<tfgst::Engine> old;
  {
    std::lock_guard<std::mutex> lock(st->engine_mu);
    old = st->engine;
    st->engine = engine;
  }
  st->processing.reset();
  st->inference.reset();
  log_device(self, *engine);
  post_model_loaded(self, *engine, swap);
}

gboolean gst_timfusion_prepare_model(GstTimFusion* self) {
  tfgst::State* st = self->st;
  const timfusion::FuserOptions opts = requested_options(st);
  auto current = st->current_engine();
  if (current && tfgst::same_options(current->options(), opts)) {
    GST_DEBUG_OBJECT(self, "model %s already loaded, reusing it", current->path().c_str());
    return TRUE;
  }
  const std::string path = timfusion::resolve_model_path(opts.model);
  std::shared_ptr<tfgst::Engine> engine;
  const uint64_t generation = new_generation(st);
  try {
    engine = std::make_shared<tfgst::Engine>(opts, generation);
  } catch (const std::exception& e) {
    std::error_code ec;
    const bool missing = !std::filesystem::exists(path, ec);
    gchar* details = g_strdup_printf("model=%s arch=%s device=%s precision=%s", path.c_str(),
                                     opts.arch.empty() ? "(from file)" : opts.arch.c_str(),
                                     timfusion::device_name(opts.device), timfusion::precision_name(opts.precision));
    if (missing)
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Could not load the fusion model: %s", e.what()), ("%s", details));
    else
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not load the fusion model: %s", e.what()), ("%s", details));
    g_free(details);
    return FALSE;
  }
  install_engine(self, engine, FALSE);
  return TRUE;
}

static cv::Size negotiated_size(GstTimFusion* self) {
  GstVideoAggregator* vagg = GST_VIDEO_AGGREGATOR(self);
  GST_OBJECT_LOCK(self);
  cv::Size s(GST_VIDEO_INFO_WIDTH(&vagg->info), GST_VIDEO_INFO_HEIGHT(&vagg->info));
  GST_OBJECT_UNLOCK(self);
  return s;
}

void gst_timfusion_request_model_swap(GstTimFusion* self) {
  tfgst::State* st = self->st;
  const timfusion::FuserOptions opts = requested_options(st);
  auto current = st->current_engine();
  if (current && tfgst::same_options(current->options(), opts)) {
    st->loader.cancel();  // back to the loaded one: drop loads in flight
    return;
  }
  const uint64_t generation = new_generation(st);
  GST_INFO_OBJECT(self, "loading model %s in the background", timfusion::resolve_model_path(opts.model).c_str());
  gst_object_ref(self);
  st->loader.start(
      opts, generation, negotiated_size(self),
      [self](std::shared_ptr<tfgst::Engine> engine, const std::string& error) {
        if (engine) {
          install_engine(self, engine, TRUE);
        } else if (!error.empty()) {
          auto cur = self->st->current_engine();
          GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ, ("Could not load the new fusion model: %s", error.c_str()),
                              ("keeping the current model %s", cur ? cur->path().c_str() : "(none)"));
        }
      },
      [self] { gst_object_unref(self); });
}
