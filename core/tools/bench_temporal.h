// timfusion-bench --temporal: the element's temporal filter alone, per frame.
#pragma once

namespace timfusion::tool {

// Times TemporalFilter::apply (default options) on FRAMES 640x480 frames of a
// noisy static scene with a textured square moving across it, 8-bit IR and
// RGB output (the element's default path), after 5 untimed frames. Prints a
// Markdown row per IR depth. Returns 0, or 1 on error.
int bench_temporal(int frames);

}  // namespace timfusion::tool
