#!/bin/bash
# `ember score` on models that use the runtime's own operators: a Gemm + Sigmoid model made by
# make_models.py, and the binary MLP of models/ (breast cancer, 30 features) against PyTorch's
# reference outputs.
# usage: test_models.sh EMBER MODELS_DIR ZOO_DIR (ZOO_DIR: the repository's models/)
set -u
EMBER=$(realpath "$1")
M=$(realpath "$2")
ZOO=$(realpath -m "$3")
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# Gemm + Sigmoid against numpy in float32
$PY -c "
import random
random.seed(5)
print('id,a,b,c,d')
for i in range(3000):
    print(f'r{i},' + ','.join(repr(random.uniform(-3, 3)) for _ in range(4)))
" >in.csv
if "$EMBER" score "$M/gemm_sigmoid.onnx" --input in.csv --output out.csv --id-column id \
    --quiet 2>err.txt; then
    $PY -c "
import numpy as np
x = np.loadtxt('in.csv', delimiter=',', skiprows=1, usecols=(1, 2, 3, 4), dtype=np.float32)
w = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
logit = x @ w + np.float32(0.1)
p = 1 / (1 + np.exp(-logit))
got = np.loadtxt('out.csv', delimiter=',', skiprows=1, usecols=(1, 2), dtype=np.float32)
assert open('out.csv').readline().strip() == 'id,logit,p'
assert np.allclose(got[:, 0], logit, rtol=1e-5, atol=1e-6), abs(got[:, 0] - logit).max()
assert np.allclose(got[:, 1], p, rtol=1e-5, atol=1e-7), abs(got[:, 1] - p).max()
" && ok || bad "gemm_sigmoid outputs differ from numpy"
    "$EMBER" score "$M/gemm_sigmoid.onnx" --input in.csv --output head.csv --id-column id \
        --outputs logit --head binary --quiet && $PY -c "
import numpy as np
p = np.loadtxt('out.csv', delimiter=',', skiprows=1, usecols=(2,), dtype=np.float32)
lab = np.loadtxt('head.csv', delimiter=',', skiprows=1, usecols=(1,), dtype=np.int64)
assert (lab == (p > 0.5)).all()
" && ok || bad "--head binary disagrees with the model's own Sigmoid"
else
    bad "gemm_sigmoid: $(cat err.txt)"
fi

# the binary MLP of the model zoo, against PyTorch
if [[ -f "$ZOO/binary_mlp.onnx" && -f "$ZOO/binary_mlp.input.npy" ]]; then
    if "$EMBER" score "$ZOO/binary_mlp.onnx" --input "$ZOO/binary_mlp.input.npy" \
        --output logit.npy --quiet 2>err.txt; then
        $PY -c "
import numpy as np
got = np.load('logit.npy'); want = np.load('$ZOO/binary_mlp.expected_logit.npy')
assert got.shape == want.shape, (got.shape, want.shape)
assert np.allclose(got, want, rtol=1e-5, atol=1e-6), abs(got - want).max()
" && ok || bad "binary_mlp logits differ from PyTorch"
        # through CSV (shortest float text of the same inputs) and the binary head
        $PY -c "
import numpy as np
x = np.load('$ZOO/binary_mlp.input.npy')
with open('x.csv', 'w') as f:
    f.write(','.join(f'f{i}' for i in range(x.shape[1])) + '\n')
    for row in x: f.write(','.join(repr(float(v)) for v in row) + '\n')
"
        "$EMBER" score "$ZOO/binary_mlp.onnx" --input x.csv --output labels.csv --head binary \
            --quiet && $PY -c "
import numpy as np
lab = np.loadtxt('labels.csv', delimiter=',', skiprows=1, dtype=np.int64)
want = np.load('$ZOO/binary_mlp_decision.expected_decision.npy').reshape(-1).astype(np.int64)
assert (lab == want).all(), (lab, want)
" && ok || bad "binary_mlp --head binary differs from PyTorch's round(sigmoid(x))"
    else
        bad "binary_mlp: $(cat err.txt)"
    fi
    # every head against the decisions PyTorch made (models/*_decision, *_rank)
    for spec in "multiclass_mlp multiclass multiclass_mlp_decision.expected_label" \
        "multilabel_cnn multilabel:0.45,0.4,0.55 multilabel_cnn_decision.expected_labels" \
        "coral_mlp ordinal coral_mlp_rank.expected_rank" \
        "corn_mlp ordinal:corn corn_mlp_rank.expected_rank"; do
        set -- $spec
        if "$EMBER" score "$ZOO/$1.onnx" --input "$ZOO/$1.input.npy" --output "h_$1.npy" \
            --head "$2" --quiet 2>err.txt; then
            $PY -c "
import numpy as np
got = np.load('h_$1.npy'); want = np.load('$ZOO/$3.npy')
assert (got.reshape(want.shape).astype(np.int64) == want.astype(np.int64)).all(), (got, want)
" && ok || bad "--head $2 on $1 differs from PyTorch"
        else
            bad "$1: $(cat err.txt)"
        fi
    done
    # images from CSV: 64 columns reshaped to [1, 8, 8]
    $PY -c "
import numpy as np
x = np.load('$ZOO/multilabel_cnn.input.npy').reshape(32, 64)
with open('img.csv', 'w') as f:
    for i, row in enumerate(x): f.write(f'img{i},' + ','.join(repr(float(v)) for v in row) + '\\n')
"
    "$EMBER" score "$ZOO/multilabel_cnn.onnx" --input img.csv --output img.jsonl --no-header \
        --id-column 1 --head multilabel:0.45,0.4,0.55 --quiet && $PY -c "
import json, numpy as np
rows = [json.loads(l) for l in open('img.jsonl')]
want = np.load('$ZOO/multilabel_cnn_decision.expected_labels.npy').astype(np.int64)
assert [r['id'] for r in rows] == [f'img{i}' for i in range(32)]
assert (np.array([r['label'] for r in rows]) == want).all()
" && ok || bad "multilabel_cnn from CSV rows reshaped to [1, 8, 8]"
else
    bad "$ZOO/binary_mlp.onnx is missing (the model zoo has not landed on this branch)"
fi

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
