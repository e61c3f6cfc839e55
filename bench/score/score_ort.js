// Batch scoring of a CSV with onnxruntime-node, written the way a Node.js user would: stream
// the file line by line, parse with Number, run batches, write one prediction per line.
// usage: node score_ort.js MODEL INPUT.csv OUTPUT.csv [BATCH]
const fs = require('fs');
const readline = require('readline');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, output, batchText] = process.argv.slice(2);
  const batch = parseInt(batchText || '1024', 10);
  const session = await ort.InferenceSession.create(model, {graphOptimizationLevel: 'all'});
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  const out = fs.createWriteStream(output);
  const write = async (text) => {
    if (!out.write(text)) await new Promise((resolve) => out.once('drain', resolve));
  };
  await write(outName + '\n');
  const lines = readline.createInterface({input: fs.createReadStream(input), crlfDelay: Infinity});
  let header = true;
  let width = 0;
  let rows = [];
  const flush = async () => {
    const n = rows.length;
    const data = new Float32Array(n * width);
    for (let i = 0; i < n; i++) data.set(rows[i], i * width);
    const result = await session.run({[inName]: new ort.Tensor('float32', data, [n, width])});
    const y = result[outName].data;
    const per = y.length / n;
    let text = '';
    for (let i = 0; i < n; i++) text += Array.from(y.subarray(i * per, (i + 1) * per)).join(',') + '\n';
    await write(text);
    rows = [];
  };
  for await (const line of lines) {
    if (header) {
      header = false;
      width = line.split(',').length;
      continue;
    }
    if (!line) continue;
    rows.push(line.split(',').map(Number));
    if (rows.length === batch) await flush();
  }
  if (rows.length) await flush();
  await new Promise((resolve) => out.end(resolve));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
