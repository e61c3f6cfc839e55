#!/bin/bash
# Fan-out with GNU parallel: `parallel --pipe --keep-order` cuts a large CSV into blocks of whole
# lines, runs one `ember score` per block and concatenates the outputs in input order. The
# result must be byte-identical to one process scoring the whole file (docs/score.md).
# usage: test_parallel.sh EMBER PLUGIN MODELS_DIR
set -u
EMBER=$(realpath "$1")
PLUGIN=$(realpath "$2")
M=$(realpath "$3")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

if ! command -v parallel >/dev/null; then
    # the test needs the real tool: install it (Debian) or fail, never pass without it
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get install -y -qq parallel || { apt-get update -qq && apt-get install -y -qq parallel; }) \
            >/dev/null 2>&1
    fi
fi
if ! command -v parallel >/dev/null; then
    echo "FAIL: GNU parallel is missing and could not be installed (apt-get install parallel)"
    echo "0 passed, 1 failed"
    exit 1
fi

/usr/bin/python3 -c "
import random
random.seed(11)
print('id,a,b,c,d')
for i in range(200000):
    print(f'row{i},' + ','.join(repr(random.uniform(-4, 4)) for _ in range(4)))
" >data.csv
/usr/bin/python3 -c "
import json, random
random.seed(12)
for i in range(100000):
    print(json.dumps({'id': i, 'x': [random.uniform(-4, 4) for _ in range(4)]}))
" >data.jsonl

score=("$EMBER" --plugin "$PLUGIN" score "$M/affine4.onnx")
opts=(--id-column id --head binary --probabilities --quiet)

# one process
"${score[@]}" --input data.csv --output single.csv "${opts[@]}" || bad "single process (csv)"
# N processes: the header line once (from the header alone), then the blocks
head -1 data.csv | "${score[@]}" --input - --input-format csv --output - "${opts[@]}" >fanout.csv
parallel --will-cite --pipe --keep-order --header 1 --block 300k -j 4 --joblog jobs.txt \
    "${score[@]}" --input - --input-format csv --output - "${opts[@]}" --no-output-header \
    <data.csv >>fanout.csv || bad "parallel exit code (csv)"
jobs=$(($(wc -l <jobs.txt) - 1))
[[ $jobs -ge 8 ]] && ok || bad "parallel ran only $jobs jobs"
[[ $(wc -l <single.csv) == 200001 ]] && ok || bad "single output has $(wc -l <single.csv) lines"
cmp single.csv fanout.csv && ok || bad "csv fan-out differs from one process"

# JSON Lines: no header to repeat
"${score[@]}" --input data.jsonl --output single.jsonl "${opts[@]}" || bad "single process (jsonl)"
parallel --will-cite --pipe --keep-order --block 200k -j 3 \
    "${score[@]}" --input - --input-format jsonl --output - "${opts[@]}" \
    <data.jsonl >fanout.jsonl || bad "parallel exit code (jsonl)"
cmp single.jsonl fanout.jsonl && ok || bad "jsonl fan-out differs from one process"

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
