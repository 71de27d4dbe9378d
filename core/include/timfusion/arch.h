// timfusion: architecture descriptions (genotypes) of TIM fusion networks.
//
// An ArchSpec says everything needed to build a network whose state-dict keys
// match the reference implementation (LiuZhu-CV/TIMFusion). It is stored as
// JSON in weight files' metadata, and can be written by hand:
//
//   {"name": "ivif-light", "kind": "single", "channels": 48,
//    "inputs": ["vis", "ir"],
//    "cells": ["Chain2", "Chain2"],
//    "normal": ["Residualblocks_3_1", "ECAattention_3"]}
//
// kind:    "single"     Network_Fusion9_Meta: stem, cells, stem_out.
//          "ivif-two-stage"  stage1 (single) + Network_Fusion9_3 (mask merge).
//          "mmif-two-stage"  stage1 (single) + Network_Fusion9_2 (tanh head).
// inputs:  which image is the first and second forward argument.
// cells:   "Chain2" (uses `normal`) or "Fusion" (3 scales + SKFF, uses
//          `chain_fusion`; H and W are then padded to a multiple of 4).
// Ops are named as the reference does: Residualblocks_k_d, Denseblocks_k_d,
// DilConv_k_d, SepConv_k_d, ECAattention_k, SPAattention_k, plus Identity.
// downscale: 1 (reference), 2 or 4: the single-stage network runs on a
//          space-to-depth grid (pixel unshuffle of the input, pixel shuffle of
//          the output), s*s fewer positions for real-time CPU models (ivif-rt).
// head:    "image" (reference): the last conv is the fused image.
//          "blend" (single-stage only): the last conv gives, per full-resolution
//          pixel, a weight logit z and a residual r: F = s(z)*first + (1-s(z))*second + r
//          (s = sigmoid). Detail then comes from the inputs at full resolution,
//          not from the coarse grid: what makes downscaled networks sharp.
//          "detail" (single-stage only): a two-scale blend. Each input x splits
//          into base B(x) (5x5 box mean) and detail D(x) = x - B(x); the last
//          conv gives per full-resolution pixel a base weight logit z, a
//          residual r and two detail gain logits g1, g2:
//          F = s(z)*B(first) + (1-s(z))*B(second) + r + 2s(g1)*D(first) + 2s(g2)*D(second).
//          Detail is kept from both inputs (gains 0..2) instead of averaged
//          away, which a single convex blend does wherever both have edges.
// detail_coring: (detail head only) grey levels t, 0..32 (default 0 = off):
//          each detail layer is soft-thresholded, D <- D - clamp(D, -t, t),
//          before its gain. Sensor noise is mostly detail of a few grey
//          levels; edges are tens: the gains then sharpen edges without
//          amplifying noise into frame-to-frame flicker.
// noise_coring: (detail head only) k, 0..8 (default 0 = off): each input's
//          coring threshold becomes max(detail_coring, k * s), where s is
//          that input's sensor-noise standard deviation estimated on every
//          image (noise_sigma.h: Immerkaer's finest-band mask, median of its
//          magnitude). Detail under the camera's own noise floor is then
//          neither transferred nor amplified, whatever the camera's gain;
//          a clean frame keeps its fine texture.
// detail_select: (detail head only) true: each pixel keeps the (cored) detail
//          of the input whose detail is larger in magnitude there, at that
//          input's gain, instead of the sum of both: the max-abs rule of
//          classical multi-scale fusion (with a ramp of one grey level
//          between the two where their magnitudes are nearly equal). Where both inputs have texture, a sum
//          has the orientation of neither (what Qabf punishes); the stronger
//          one is kept as it was.
// residual: (detail head only) false: the residual r is left out (its
//          channels are still computed, so weight files keep their keys). The
//          fused image is then made only of the inputs' bases and details:
//          no gradient the inputs do not have.
// salient_prior: (detail head only, needs image_means) softness S in grey
//          levels, 1..64 (default 0 = off): the base weight becomes
//          sigmoid(z + logit(p)), p the salient weight of the first input:
//          p = box(sigmoid((|box(a) - mean(a)| - |box(b) - mean(b)|) / S)),
//          15x15 box means, mean() the whole image's (the salient intensity
//          target's weight, docs/quality.md). The network learns a
//          correction to that prior instead of the weight itself: with a
//          zero last convolution it gives exactly the prior's blend.
// image_means: (single-stage only) true: the network's stem also sees each
//          input's whole-image mean, as two constant channels. The grid
//          network sees ~40 pixels around each position; which source is
//          salient there ("deviates more from its own image's mean", the
//          salient intensity target) depends on the whole frame. Trained
//          on crops, the means come from the crops' whole images.
// Two-stage models add "stage2": {"cells": 2, "g1": [...], "g2": [...],
// "batch_stats": bool}; their state-dict keys are prefixed "stage1." and
// "stage2.".
#pragma once
#include <array>
#include <string>
#include <vector>

namespace timfusion {

enum class NetKind { Single, IvifTwoStage, MmifTwoStage };
enum class Input { Ir, Vis };
enum class Head { Image, Blend, Detail };

const char* head_name(Head head);
Head parse_head(const std::string& name);  // throws Error

// One parsed op name, e.g. "DilConv_3_2" -> {"DilConv", 3, 2}.
struct OpName {
  std::string type;
  int kernel = 3;
  int dilation = 1;

  static OpName parse(const std::string& name);  // throws Error
  std::string str() const;
};

struct ArchSpec {
  std::string name;
  NetKind kind = NetKind::Single;
  int channels = 48;
  std::array<Input, 2> inputs{Input::Vis, Input::Ir};

  std::vector<std::string> cells;         // stage 1 cell types
  std::vector<std::string> normal;        // ops of Chain2 cells
  std::vector<std::string> chain_fusion;  // ops of Fusion cells
  int downscale = 1;                      // space-to-depth factor (single-stage only)
  Head head = Head::Image;                // output head (single-stage only)
  int detail_coring = 0;                  // grey levels (detail head only)
  double noise_coring = 0;                // x each input's noise estimate (detail head only)
  bool image_means = false;               // stem also sees the inputs' whole-image means
  bool detail_select = false;             // max-abs detail instead of the sum (detail head only)
  bool residual = true;                   // the residual term r (detail head only)
  int salient_prior = 0;                  // grey levels of softness, 0 = off (detail head only)

  // Two-stage models only.
  int stage2_cells = 2;
  std::vector<std::string> stage2_g1;  // reference `cells2`
  std::vector<std::string> stage2_g2;  // reference `cells3`
  // The reference IVIF stage 2 runs in train mode: its BN layers normalise
  // with each image's own statistics. Reproduced when true.
  bool stage2_batch_stats = false;

  bool two_stage() const { return kind != NetKind::Single; }
  // H and W must be a multiple of this (inputs are padded and cropped back).
  int pad_multiple() const;
  void validate() const;  // throws Error naming the first problem

  std::string to_json() const;
  static ArchSpec from_json(const std::string& json);  // throws Error
  // A built-in name (see names()) or a path to a JSON file.
  static ArchSpec resolve(const std::string& name_or_path);
  static ArchSpec named(const std::string& name);  // throws Error
  static std::vector<std::string> names();
};

}  // namespace timfusion
