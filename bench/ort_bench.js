// ONNX Runtime (onnxruntime-node) side of bench/compare: random inputs of the given shapes,
// session creation time, first run, latency percentiles, peak RSS. Prints one JSON object.
// usage: node ort_bench.js MODEL SHAPES_JSON THREADS ITERS WARMUP
const ort = require('onnxruntime-node');

// VmHWM: maxRSS would include the driver's peak (Linux keeps it across fork + exec).
function peakRssKb() {
  try {
    const m = require('fs').readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/);
    if (m) return Number(m[1]);
  } catch (e) { /* not Linux */ }
  return process.resourceUsage().maxRSS;
}

function now() { return Number(process.hrtime.bigint()) / 1e6; }

function pct(sorted, p) {
  const idx = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(idx), hi = Math.ceil(idx);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo);
}

(async () => {
  const [model, shapesJson, threads, iters, warmup] = process.argv.slice(2);
  const shapes = JSON.parse(shapesJson); // {name: {type: "float32", dims: [...]}}
  const t0 = now();
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const createMs = now() - t0;
  const feeds = {};
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 * 2 - 1; };
  for (const [name, info] of Object.entries(shapes)) {
    const n = info.dims.reduce((a, b) => a * b, 1);
    if (info.type === 'float32') {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = rnd();
      feeds[name] = new ort.Tensor('float32', data, info.dims);
    } else if (info.type === 'int64') {
      feeds[name] = new ort.Tensor('int64', new BigInt64Array(n), info.dims);
    } else {
      throw new Error('unsupported input type ' + info.type);
    }
  }
  let t = now();
  await session.run(feeds);
  const firstMs = now() - t;
  for (let i = 0; i < Number(warmup); i++) await session.run(feeds);
  const lat = [];
  for (let i = 0; i < Number(iters); i++) {
    t = now();
    await session.run(feeds);
    lat.push(now() - t);
  }
  lat.sort((a, b) => a - b);
  console.log(JSON.stringify({
    session_create_ms: createMs, first_run_ms: firstMs,
    median_ms: pct(lat, 50), p10_ms: pct(lat, 10), p90_ms: pct(lat, 90), p99_ms: pct(lat, 99),
    peak_rss_kb: peakRssKb(),
  }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
