// Runs an ONNX model under ONNX Runtime (the npm registry's onnxruntime-node,
// installed by scripts/setup.sh) on raw float32 luma planes.
//   node ort_run.js ORT_DIR JOBS.json
// JOBS.json: {"model": "m.onnx", "jobs": [{"ir": "a.f32", "vis": "b.f32",
// "out": "c.f32", "h": H, "w": W}, ...]}; each plane is [1,1,H,W] float32.
'use strict';
const fs = require('fs');
const path = require('path');

function readPlane(file, h, w) {
  const bytes = fs.readFileSync(file);
  if (bytes.length !== 4 * h * w) throw new Error(`${file}: ${bytes.length} bytes, expected ${4 * h * w}`);
  // A copy: a Buffer's offset in its pool need not be a multiple of 4.
  return new Float32Array(new Uint8Array(bytes).buffer);
}

async function main() {
  const [ortDir, jobsFile] = process.argv.slice(2);
  const ort = require(path.join(path.resolve(ortDir), 'node_modules', 'onnxruntime-node'));
  const spec = JSON.parse(fs.readFileSync(jobsFile, 'utf8'));
  const session = await ort.InferenceSession.create(spec.model, {executionProviders: ['cpu'],
    graphOptimizationLevel: process.env.ORT_OPTIMIZATION || 'all'});
  for (const job of spec.jobs) {
    const dims = [1, 1, job.h, job.w];
    const feeds = {
      ir: new ort.Tensor('float32', readPlane(job.ir, job.h, job.w), dims),
      vis: new ort.Tensor('float32', readPlane(job.vis, job.h, job.w), dims),
    };
    const t0 = process.hrtime.bigint();
    const result = await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const fused = result.fused;
    if (fused.dims.join('x') !== dims.join('x')) throw new Error(`output dims ${fused.dims} for input ${dims}`);
    fs.writeFileSync(job.out, Buffer.from(fused.data.buffer, fused.data.byteOffset, fused.data.byteLength));
    console.log(`${path.basename(job.out)} ${job.w}x${job.h} ${ms.toFixed(0)} ms`);
  }
  console.log(`onnxruntime-node ${ort.env.versions ? ort.env.versions.common : ''}`);
}

main().catch((e) => {
  console.error(`ort_run.js: ${e.message}`);
  process.exit(1);
});
