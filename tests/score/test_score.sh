#!/bin/bash
# Shell tests of `ember score`: formats, column selection, ids, multi-input mapping, heads,
# every bad-input case with its message and exit code, --on-error modes, stdin / stdout,
# order with threads, closed pipes and full disks.
# usage: test_score.sh EMBER PLUGIN MODELS_DIR   (models from make_models.py; test ops plugin)
set -u
EMBER=$(realpath "$1")
PLUGIN=$(realpath "$2")
M=$(realpath "$3")
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
passed=0
failed=0

score() { "$EMBER" --plugin "$PLUGIN" score "$@"; }

ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "FAIL: $1"
    shift
    printf '  %s\n' "$@"
}

# t NAME RC STDOUT STDERR_SUBSTRING ARGS...: stdout must match exactly (trailing newlines
# aside), stderr must contain the substring, the exit code must be RC. Stdin: $STDIN or none.
t() {
    local name=$1 rc=$2 out=$3 err=$4
    shift 4
    local got_out got_rc got_err
    got_out=$(score "$@" 2>"$T/stderr" <"${STDIN:-/dev/null}")
    got_rc=$?
    got_err=$(cat "$T/stderr")
    if [[ $got_rc == "$rc" && "$got_out" == "$out" && "$got_err" == *"$err"* ]]; then
        ok
    else
        bad "$name" "exit $got_rc (want $rc)" "stdout: $got_out" "want:   $out" \
            "stderr: $got_err" "want substring: $err"
    fi
}

# ---------------------------------------------------------------------------------------------
# CSV / TSV
printf 'a,b,c,d\n1,2,3,4\n0.1,0.2,0.3,0.4\n1e10,-0,nan,-inf\n' >basic.csv
t "csv basic" 0 $'y_0,y_1,y_2,y_3\n1,2,3,4\n0.1,0.2,0.3,0.4\n1e+10,-0,nan,-inf' "" \
    "$M/echo4.onnx" --input basic.csv --output - -q
t "summary line" 0 "" "ember: 3 rows in " "$M/echo4.onnx" --input basic.csv --output out.csv
[[ $(cat out.csv) == $'y_0,y_1,y_2,y_3\n1,2,3,4\n0.1,0.2,0.3,0.4\n1e+10,-0,nan,-inf' ]] && ok ||
    bad "csv to a file" "$(cat out.csv)"
t "quiet: no summary" 0 "" "" "$M/echo4.onnx" --input basic.csv --output out2.csv --quiet
[[ ! -s "$T/stderr" ]] && ok || bad "--quiet leaves stderr empty" "$(cat "$T/stderr")"
printf 'a\tb\tc\td\n1\t2\t3\t4\n' >basic.tsv
t "tsv in, tsv out" 0 $'y_0\ty_1\ty_2\ty_3\n1\t2\t3\t4' "" "$M/echo4.onnx" --input basic.tsv \
    --output - -q
printf 'a;b;c;d\n1;2;3;4\n' >semi.csv
t "--delimiter" 0 $'y_0;y_1;y_2;y_3\n1;2;3;4' "" "$M/echo4.onnx" --input semi.csv --output - -q \
    --delimiter ';'
printf 'a,b,c,d\r\n"1", 2 ,"3" ,4\r\n"1.5","2e3",3,"4"\r\n' >quoted.csv
t "quotes, spaces, CRLF" 0 $'y_0,y_1,y_2,y_3\n1,2,3,4\n1.5,2000,3,4' "" "$M/echo4.onnx" \
    --input quoted.csv --output - -q
printf 'name,a,b,c,d\n"multi\nline ""id""",1,2,3,4\nplain,5,6,7,8\n' >multiline.csv
t "quoted newline in an id" 0 $'name,y_0,y_1,y_2,y_3\n"multi\nline ""id""",1,2,3,4\nplain,5,6,7,8' \
    "" "$M/echo4.onnx" --input multiline.csv --output - -q --id-column name
t "id as JSON" 0 $'{"name":"multi\\nline \\"id\\"","y":[1,2,3,4]}\n{"name":"plain","y":[5,6,7,8]}' \
    "" "$M/echo4.onnx" --input multiline.csv --output - -q --id-column 1 --output-format jsonl
printf '\xef\xbb\xbfa,b,c,d\n1,2,3,4\n' >bom.csv
t "a UTF-8 byte order mark is skipped" 0 $'y_0,y_1,y_2,y_3\n4,3,2,1' "" "$M/echo4.onnx" \
    --input bom.csv --output - -q --columns d,c,b,a
printf '1,2,3,4\n5,6,7,8\n' >nohead.csv
t "no header (detected)" 0 $'y_0,y_1,y_2,y_3\n1,2,3,4\n5,6,7,8' "" "$M/echo4.onnx" \
    --input nohead.csv --output - -q
t "--header takes a numeric first line as names" 0 $'y_0,y_1,y_2,y_3\n5,6,7,8' "" \
    "$M/echo4.onnx" --input nohead.csv --output - -q --header
printf 'id,2,3,4\n5,6,7,8\n' >mixed.csv
t "mixed first line" 2 "" "mixed.csv:1: the first line has both numbers and names: say --header or --no-header" \
    "$M/echo4.onnx" --input mixed.csv --output - -q
printf 'r1,1,2,3,4\nr2,5,6,7,8\n' >ids_nohead.csv
t "--no-header with an id column by number" 0 $'id,y_0,y_1,y_2,y_3\nr1,1,2,3,4\nr2,5,6,7,8' "" \
    "$M/echo4.onnx" --input ids_nohead.csv --output - -q --no-header --id-column 1
t "--no-output-header" 0 $'r1,1,2,3,4\nr2,5,6,7,8' "" \
    "$M/echo4.onnx" --input ids_nohead.csv --output - -q --no-header --id-column 1 \
    --no-output-header

# columns
printf 'a,b,c,d,e\n1,2,3,4,5\n' >five.csv
t "too many columns without --columns" 2 "" \
    "input 'x' takes 4 values per row ([4]), the file has 5: pick the feature columns with --columns" \
    "$M/echo4.onnx" --input five.csv --output - -q
t "--columns names, numbers, ranges, order" 0 $'y_0,y_1,y_2,y_3\n5,1,2,4' "" \
    "$M/echo4.onnx" --input five.csv --output - -q --columns e,1-2,d
t "--columns unknown name" 2 "" "--columns: no column 'zz'" "$M/echo4.onnx" --input five.csv \
    --output - -q --columns a,b,c,zz
t "--columns past the end" 2 "" "--columns: column 9 is past the last one (5)" \
    "$M/echo4.onnx" --input five.csv --output - -q --columns 1,2,3,9
t "--columns twice" 2 "" "column 1 ('a') is used twice" "$M/echo4.onnx" --input five.csv \
    --output - -q --columns a,b,c,1
t "--columns count" 2 "" "input 'x' takes 4 values per row ([4]), the column list gives 3" \
    "$M/echo4.onnx" --input five.csv --output - -q --columns 1-3
t "reshape to [1,2,2]" 0 '{"y":[[[2,3],[4,5]]]}' "" "$M/echo_image.onnx" --input five.csv \
    --output - -q --columns 2-5 --output-format jsonl
t "unknown width from the columns" 0 $'y_0,y_1,y_2,y_3,y_4\n1,2,3,4,5' "" "$M/echo_any.onnx" \
    --input five.csv --output - -q

# multi-input
printf 'p,q,r,s,t\n1,2,3,4,5\n' >multi.csv
t "--map" 0 $'y_0,y_1,y_2,y_3,y_4\n4,5,1,2,3' "" "$M/concat.onnx" --input multi.csv --output - \
    -q --map a=s,t --map b=1-3
t "--map missing an input" 2 "" "the model has 2 inputs: give the columns of each with --map INPUT=COLUMNS ('b' has none)" \
    "$M/concat.onnx" --input multi.csv --output - -q --map a=p,q
t "--map unknown input" 2 "" "--map zz=p: the model has no input 'zz'" "$M/concat.onnx" \
    --input multi.csv --output - -q --map zz=p

# ---------------------------------------------------------------------------------------------
# numbers: exact parsing, shortest printing
printf '0.1,0.33333334,16777217,1e-45\n3.4028235e38,3.5e38,1e-50,-1.17549435e-38\n' >num.csv
t "shortest round trip" 0 \
    $'y_0,y_1,y_2,y_3\n0.1,0.33333334,16777216,1e-45\n3.4028235e+38,inf,0,-1.1754944e-38' "" \
    "$M/echo4.onnx" --input num.csv --output - -q
t "--precision 3" 0 $'y_0,y_1,y_2,y_3\n0.1,0.333,1.68e+07,1.4e-45\n3.4e+38,inf,0,-1.18e-38' "" \
    "$M/echo4.onnx" --input num.csv --output - -q --precision 3
printf '0.1,0.30000000000000004\n1e-320,123456789012345678901234567890\n' >f64.csv
t "float64 input and output" 0 \
    $'y_0,y_1\n0.1,0.30000000000000004\n1e-320,1.2345678901234568e+29' "" \
    "$M/echo_f64.onnx" --input f64.csv --output - -q
printf '1,-2,9223372036854775807\n1.5,2,3\n' >i64.csv
t "int64" 2 $'y_0,y_1,y_2\n1,-2,9223372036854775807' "i64.csv:2:1: field 1: '1.5' is not an integer" \
    "$M/echo_i64.onnx" --input i64.csv --output - -q
printf '1,255\n300,2\n' >u8.csv
t "uint8 range" 2 $'y_0,y_1\n1,255' "u8.csv:2:1: field 1: '300' is out of range for uint8" \
    "$M/echo_u8.onnx" --input u8.csv --output - -q
printf 'true,0\nFALSE,1\nyes,0\n' >bool.csv
t "bool" 2 $'y_0,y_1\n1,0\n0,1' "bool.csv:3:1: field 1: 'yes' is not a boolean (0, 1, true, false)" \
    "$M/echo_bool.onnx" --input bool.csv --output - -q

# ---------------------------------------------------------------------------------------------
# bad rows: messages, exit codes, --on-error
# (an unterminated quote runs to the end of the file, so it comes last)
printf 'id,a,b,c,d\nr1,1,2,3,4\nr2,0.1,x,0.3,0.4\nr3,1,2,3\nr4,1,2,3,4,5\nr5,1,,3,4\nr6,1,2,3,4\nr7,"1,2,3,4\n' >bad.csv
t "stop at the first bad row" 2 $'id,y_0,y_1,y_2,y_3\nr1,1,2,3,4' \
    "ember: bad.csv:3:8: field 3 ('b'): 'x' is not a number" \
    "$M/echo4.onnx" --input bad.csv --output - --id-column id
t "skip" 0 $'id,y_0,y_1,y_2,y_3\nr1,1,2,3,4\nr6,1,2,3,4' "ember: 2 rows in" \
    "$M/echo4.onnx" --input bad.csv --output - --id-column id --on-error skip
for want in "5 skipped" "skipped bad.csv:3:8: field 3 ('b'): 'x' is not a number" \
    "skipped bad.csv:4:9: expected 5 fields, found 4" \
    "skipped bad.csv:5:12: expected 5 fields, found 6" \
    "skipped bad.csv:6:6: field 3 ('b'): empty value" \
    "skipped bad.csv:8:4: field 2 ('a'): unterminated quoted field"; do
    grep -qF -- "$want" "$T/stderr" && ok || bad "skip summary lists: $want" "$(cat "$T/stderr")"
done
t "null" 0 $'id,y_0,y_1,y_2,y_3\nr1,1,2,3,4\nr2,,,,\nr3,,,,\nr4,,,,\nr5,,,,\nr6,1,2,3,4\nr7,,,,' \
    "5 null (bad rows)" "$M/echo4.onnx" --input bad.csv --output - --id-column id --on-error null
t "null as JSON" 0 $'{"id":"r1","y":[1,2,3,4]}\n{"id":"r2","y":null}' "" "$M/echo4.onnx" \
    --input <(head -3 bad.csv) --input-format csv --output - --id-column id --on-error null -q \
    --output-format jsonl
# rows before the error are complete; no half line (many batches, many threads)
$PY -c "
import sys
print('a,b,c,d')
for i in range(5000): print(f'{i},{i+1},{i+2},{i+3}' if i != 3210 else 'oops,1,2,3')
" >late_bad.csv
score "$M/echo4.onnx" --input late_bad.csv --output late.csv --batch 7 --threads 4 2>late.err
rc=$?
if [[ $rc == 2 && $(wc -l <late.csv) == 3211 && $(tail -c 1 late.csv | od -An -c | tr -d ' ') == '\n' &&
    $(tail -1 late.csv) == "3209,3210,3211,3212" && $(cat late.err) == *"late_bad.csv:3212:1: field 1 ('a'): 'oops' is not a number"* ]]; then
    ok
else
    bad "rows before a late error" "rc $rc, $(wc -l <late.csv) lines, last: $(tail -1 late.csv)" \
        "$(cat late.err)"
fi

# ---------------------------------------------------------------------------------------------
# JSONL
cat >in.jsonl <<'EOF'
{"x":[1,2,3,4],"id":"a"}
{"id":7, "x": [0.5,1e3,-2,3], "other": {"k": [1, "z"]}}

{"x":[1,2,3],"id":"c"}
{"x":[[1,2],[3,4]],"id":"d"}
{"id":"e"}
[1]
{"x":[1,2,3,4],"x":[1,2,3,4],"id":"g"}
{"x":[1,2,3,4],"id":"h"} x
{"x":[NaN,Infinity,-Infinity,-0],"id":"i"}
{"x":[1,2,"3",4],"id":"j"}
EOF
t "jsonl skip" 0 $'{"id":"a","y":[1,2,3,4]}\n{"id":7,"y":[0.5,1000,-2,3]}\n{"id":"i","y":[NaN,Infinity,-Infinity,-0]}' \
    "7 skipped" "$M/echo4.onnx" --input in.jsonl --output - --id-column id --on-error skip
for want in "in.jsonl:4:6: 'x': expected an array of 4, found 3" \
    "in.jsonl:5:7: 'x': expected a number, found an array" "in.jsonl:6:1: missing key 'x'" \
    "in.jsonl:7:1: expected a JSON object, found an array" "in.jsonl:8:16: duplicate key 'x'"; do
    grep -qF -- "$want" "$T/stderr" && ok || bad "jsonl message: $want" "$(cat "$T/stderr")"
done
t "jsonl stop" 2 $'{"id":"a","y":[1,2,3,4]}\n{"id":7,"y":[0.5,1000,-2,3]}' \
    "in.jsonl:4:6: 'x': expected an array of 4, found 3" "$M/echo4.onnx" --input in.jsonl \
    --output - --id-column id
t "jsonl to csv ids" 0 $'id,y_0,y_1,y_2,y_3\na,1,2,3,4\n7,0.5,1000,-2,3' "" "$M/echo4.onnx" \
    --input <(head -2 in.jsonl) --input-format jsonl --output - --output-format csv \
    --id-column id -q
printf '{"x":[[[1,2],[3,4]]]}\n{"x":[1,2,3,4]}\n{"x":[[[1,2],[3]]]}\n' >img.jsonl
t "jsonl nested and flat" 2 $'{"y":[[[1,2],[3,4]]]}\n{"y":[[[1,2],[3,4]]]}' \
    "img.jsonl:3:14: 'x': expected an array of 2, found 1 (shape [1, 2, 2])" \
    "$M/echo_image.onnx" --input img.jsonl --output -
printf '{"a":[1,2],"b":[3,4,5]}\n{"b":[1,2,3],"a":[4,5]}\n' >multi.jsonl
t "jsonl two inputs" 0 $'{"y":[1,2,3,4,5]}\n{"y":[4,5,1,2,3]}' "" "$M/concat.onnx" \
    --input multi.jsonl --output - -q
printf '{"left":[1,2],"b":[3,4,5]}\n' >renamed.jsonl
t "jsonl --map INPUT=KEY" 0 '{"y":[1,2,3,4,5]}' "" "$M/concat.onnx" --input renamed.jsonl \
    --output - -q --map a=left
printf '{"x":5}\n{"x":[6]}\n' >scalar.jsonl
t "jsonl one value a row" 0 $'{"y":[5]}\n{"y":[6]}' "" "$M/echo1.onnx" --input scalar.jsonl \
    --output - -q

# ---------------------------------------------------------------------------------------------
# NPY
$PY -c "
import numpy as np
a = (np.arange(20, dtype=np.float32).reshape(5, 4) / 3).astype(np.float32)
np.save('x.npy', a)
np.save('x64.npy', a.astype(np.float64).reshape(5, 2, 2))
np.save('xbe.npy', a.astype('>f4'))
np.save('xf.npy', np.asfortranarray(a))
np.save('xi.npy', np.arange(15, dtype=np.int32).reshape(5, 3))
np.save('xbig.npy', np.array([[1e40, 2, 3], [1, 2, 3]]))
with open('x.npy', 'rb') as f: data = f.read()
open('trunc.npy', 'wb').write(data[:-10])
"
X_CSV=$'y_0,y_1,y_2,y_3\n0,0.33333334,0.6666667,1\n1.3333334,1.6666666,2,2.3333333\n2.6666667,3,3.3333333,3.6666667\n4,4.3333335,4.6666665,5\n5.3333335,5.6666665,6,6.3333335'
t "npy float32 (mapped)" 0 "$X_CSV" "" "$M/echo4.onnx" --input x.npy --output - -q
t "npy float64 [5,2,2] to float32 [4]" 0 "$X_CSV" "" "$M/echo4.onnx" --input x64.npy --output - -q
t "npy big-endian" 0 "$X_CSV" "" "$M/echo4.onnx" --input xbe.npy --output - -q
STDIN=x.npy t "npy from stdin" 0 "$X_CSV" "" "$M/echo4.onnx" --input - --input-format npy \
    --output - -q
t "npy int32 to int64" 0 $'y_0,y_1,y_2\n0,1,2\n3,4,5\n6,7,8\n9,10,11\n12,13,14' "" \
    "$M/echo_i64.onnx" --input xi.npy --output - -q
t "npy --columns" 0 $'y_0,y_1\n1,0\n2.3333333,1.3333334\n3.6666667,2.6666667\n5,4\n6.3333335,5.3333335' \
    "" "$M/echo_any.onnx" --input x.npy --output - -q --columns 4,1
t "npy value out of range" 2 "" "xbig.npy:1:1: value does not fit int64" "$M/echo_i64.onnx" \
    --input xbig.npy --output - -q
t "npy Fortran order" 2 "" "xf.npy: a Fortran-order npy array cannot be read row by row" \
    "$M/echo4.onnx" --input xf.npy --output - -q
t "npy truncated" 2 "" "trunc.npy: the file holds 70 bytes of data, the header says 5 rows of 16" \
    "$M/echo4.onnx" --input trunc.npy --output - -q
cat trunc.npy | score "$M/echo4.onnx" --input - --input-format npy --output - -q >/dev/null \
    2>trunc.err
rc=$?
[[ $rc == 2 && $(cat trunc.err) == *"<stdin>: the data ends after 4 rows, the header says 5"* ]] &&
    ok || bad "npy truncated stream" "rc $rc: $(cat trunc.err)"
score "$M/echo4.onnx" --input x.npy --output y.npy -q &&
    $PY -c "
import numpy as np
a, b = np.load('x.npy'), np.load('y.npy')
assert a.dtype == b.dtype and a.shape == b.shape and (a.view(np.uint32) == b.view(np.uint32)).all()
" && ok || bad "npy out (file) equals npy in"
score "$M/echo4.onnx" --input basic.csv --output y2.npy -q &&
    $PY -c "
import numpy as np
b = np.load('y2.npy')
assert b.shape == (3, 4) and b.dtype == np.float32 and b[2, 0] == 1e10 and np.isnan(b[2, 2])
" && ok || bad "npy out from csv (row count patched in the header)"
score "$M/echo4.onnx" --input x.npy --output - --output-format npy -q | cat >y3.npy
cmp -s y.npy y3.npy && ok || bad "npy out through a pipe (row count known)"
t "npy out to a pipe, count unknown" 2 "" \
    "an npy output that is not a regular file needs the row count up front" \
    "$M/echo4.onnx" --input basic.csv --output >(cat >/dev/null) --output-format npy -q
t "npy out with two fields" 2 "" "an npy output holds one array, this run writes 2" \
    "$M/two_outputs.onnx" --input basic.csv --output z.npy -q
t "npy out, null ints" 2 "" "--on-error null marks bad rows with NaN, which an npy array of int64 cannot hold" \
    "$M/affine4.onnx" --input basic.csv --output z.npy -q --head binary --on-error null
t "npy out, no ids" 2 "" "--id-column: an npy output has no place for ids" "$M/echo4.onnx" \
    --input multiline.csv --output z.npy -q --id-column name

# ---------------------------------------------------------------------------------------------
# outputs and heads
t "two outputs" 0 $'logit,copy_0,copy_1,copy_2,copy_3\n5.6,1,2,3,4' "" "$M/two_outputs.onnx" \
    --input <(head -2 basic.csv) --input-format csv --output - -q
t "--outputs picks and orders" 0 '{"copy":[1,2,3,4],"logit":[5.6]}' "" "$M/two_outputs.onnx" \
    --input <(head -2 basic.csv) --input-format csv --output - -q --outputs copy,logit \
    --output-format jsonl
t "--outputs unknown" 2 "" "--outputs: the model has no output 'nope'" "$M/two_outputs.onnx" \
    --input basic.csv --output - -q --outputs nope
t "--head with two outputs" 2 "" "--head applies to one output and this run has 2: choose it with --outputs" \
    "$M/two_outputs.onnx" --input basic.csv --output - -q --head binary
t "--probabilities alone" 2 "" "--probabilities goes with --head" "$M/echo4.onnx" \
    --input basic.csv --output - -q --probabilities
t "--head bad" 2 "" "--head 'foo': expected binary[:T], multilabel[:T1,T2,...], multiclass or ordinal[:coral|corn[:T]]" \
    "$M/echo4.onnx" --input basic.csv --output - -q --head foo
printf 'v\n0.00000001\n1e-9\n-1e-9\n0.001\n-3\n0.0000001\n' >logits.csv
# sigmoid(1e-8) and sigmoid(1e-9) are exactly 0.5 in float32: not above 0.5; 1e-7 is above
t "binary at 0.5" 0 $'label,probability\n0,0.5\n0,0.5\n0,0.5\n1,0.50025\n0,0.047425874\n1,0.50000006' "" \
    "$M/echo1.onnx" --input logits.csv --output - -q --head binary --probabilities
t "binary:T" 0 $'label\n1\n1\n1\n1\n0\n1' "" "$M/echo1.onnx" --input logits.csv --output - -q \
    --head binary:0.1
t "binary needs one logit" 2 "" "--head binary on output 'y' needs one logit per row, the output has 4" \
    "$M/echo4.onnx" --input basic.csv --output - -q --head binary
t "multiclass: first index on ties" 0 $'label\n3\n1\n0' "" "$M/echo4.onnx" --input \
    <(printf '1,2,3,4\n5,7,7,1\n0,0,0,0\n') --input-format csv --output - -q --head multiclass
t "multiclass probabilities" 0 $'label,probability_0,probability_1,probability_2,probability_3\n0,0.25,0.25,0.25,0.25' \
    "" "$M/echo4.onnx" --input <(printf '0,0,0,0\n') --input-format csv --output - -q \
    --head multiclass --probabilities
t "multiclass needs 2 logits" 2 "" "--head multiclass on output 'y' needs at least 2 logits per row, the output has 1 (an argmax over one value is always 0: use binary)" \
    "$M/echo1.onnx" --input logits.csv --output - -q --head multiclass
t "multilabel thresholds" 0 $'label_0,label_1,label_2,label_3\n1,1,0,0' "" "$M/echo4.onnx" \
    --input <(printf '0,0,0,0\n') --input-format csv --output - -q --head multilabel:0.4,0.45,0.5,0.9
t "multilabel count" 2 "" "--head multilabel on output 'y' has 2 thresholds for 4 labels per row" \
    "$M/echo4.onnx" --input basic.csv --output - -q --head multilabel:0.1,0.2
# sigmoids 0.9, 0.6, 0.6: CORAL counts 3, CORN's running product (0.9, 0.54, 0.324) counts 2
# (float32 products: 0.53999996, 0.32399997)
printf '2.1972246,0.4054651,0.4054651\n' >ordinal.csv
t "ordinal coral" 0 $'label\n3' "" "$M/echo_any.onnx" --input ordinal.csv --output - -q \
    --head ordinal
t "ordinal corn" 0 $'label,probability_0,probability_1,probability_2,probability_3\n2,0.100000024,0.36,0.21599999,0.32399997' \
    "" "$M/echo_any.onnx" --input ordinal.csv --output - -q --head ordinal:corn --probabilities

# ---------------------------------------------------------------------------------------------
# streams, order, pipes, disks
t "stdin needs a format" 2 "" "--input -: say the format with --input-format csv|tsv|npy|jsonl" \
    "$M/echo4.onnx" --input - --output -
STDIN=nohead.csv t "stdin csv" 0 $'y_0,y_1,y_2,y_3\n1,2,3,4\n5,6,7,8' "" "$M/echo4.onnx" \
    --input - --input-format csv --output - -q
t "unknown output extension" 2 "" "out.xyz: cannot tell the format from the name; use --output-format" \
    "$M/echo4.onnx" --input basic.csv --output out.xyz
t "output is the input" 2 "" "basic.csv: the output is the input file" "$M/echo4.onnx" \
    --input basic.csv --output basic.csv
[[ $(head -1 basic.csv) == "a,b,c,d" ]] && ok || bad "the input survives --output INPUT"
t "missing input file" 1 "" "nope.csv: No such file or directory" "$M/echo4.onnx" \
    --input nope.csv --output -
t "fixed batch size" 0 $'y_0,y_1\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14' \
    "the model fixes the batch size at 3" "$M/echo_fixed3.onnx" --batch 2 --output - \
    --input <(printf '1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n') --input-format csv
t "not one row per input row" 1 "" "output 'y' has 1 rows for 3 input rows" "$M/one_row.onnx" \
    --input basic.csv --output - -q
: >empty.csv
t "empty input" 0 'y_0,y_1,y_2,y_3' "ember: 0 rows in" "$M/echo4.onnx" --input empty.csv --output -
printf 'a,b,c,d\n' >header_only.csv
t "header only" 0 'y_0,y_1,y_2,y_3' "" "$M/echo4.onnx" --input header_only.csv --output - -q
printf 'a,b,c,d\n1,2,3,4\n\n5,6,7,8\n\n' >blank.csv
t "blank lines are skipped" 0 $'y_0,y_1,y_2,y_3\n1,2,3,4\n5,6,7,8' "" "$M/echo4.onnx" \
    --input blank.csv --output - -q

$PY -c "
import random
random.seed(7)
print('id,a,b,c,d')
for i in range(20000):
    print(f'row{i},' + ','.join(repr(random.uniform(-5, 5)) for _ in range(4)))
" >big.csv
score "$M/affine4.onnx" --input big.csv --output ref.csv --id-column id --threads 1 \
    --batch 100000 -q
score "$M/affine4.onnx" --input big.csv --output par.csv --id-column id --threads 4 --batch 3 -q
cmp -s ref.csv par.csv && [[ $(wc -l <ref.csv) == 20001 ]] && ok ||
    bad "order with threads and small batches"
cat big.csv | score "$M/affine4.onnx" --input - --input-format csv --output - --id-column id \
    --threads 3 --batch 64 -q >pipe.csv
cmp -s ref.csv pipe.csv && ok || bad "stdin to stdout equals file to file"
# values equal the float32 arithmetic done by numpy on strtof-parsed inputs
$PY -c "
import ctypes, numpy as np
libc = ctypes.CDLL('libc.so.6'); libc.strtof.restype = ctypes.c_float
libc.strtof.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
w = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
rows = [l.strip().split(',') for l in open('big.csv')][1:]
out = [l.strip().split(',') for l in open('ref.csv')][1:]
for r, o in zip(rows, out):
    x = np.array([libc.strtof(v.encode(), None) for v in r[1:]], np.float32)
    acc = np.float32(0.1)
    for k in range(4): acc = np.float32(acc + x[k] * w[k])
    assert o[0] == r[0] and np.float32(o[1]) == acc, (r, o, acc)
    assert len(o[1].replace('-', '').replace('.', '').lstrip('0').split('e')[0]) <= 9
" && ok || bad "values equal float32 arithmetic on strtof inputs"

# | head: a clean exit, nothing on stderr
score "$M/affine4.onnx" --input big.csv --output - --id-column id 2>head.err | head -2 >head.out
rc=${PIPESTATUS[0]}
[[ $rc == 0 && ! -s head.err && $(wc -l <head.out) == 2 ]] && ok ||
    bad "| head is a clean exit" "rc $rc" "$(cat head.err)"
t "full disk" 1 "" "/dev/full: write failed: No space left on device" "$M/affine4.onnx" \
    --input big.csv --output /dev/full --output-format csv -q --id-column id
mkfifo fifo
(head -c 10 fifo >/dev/null) &
t "closed pipe (named)" 1 "" "fifo: write failed: Broken pipe" "$M/affine4.onnx" \
    --input big.csv --output fifo --output-format csv -q --id-column id

# progress on a terminal (through script(1)); the run is slowed by a pausing input
if command -v script >/dev/null; then
    cat >slow.sh <<EOF
{ head -5000 big.csv; sleep 1; tail -n +5001 big.csv; } | "$EMBER" --plugin "$PLUGIN" score \
    "$M/affine4.onnx" --input - --input-format csv --output /dev/null --output-format csv \
    --id-column id --batch 100
EOF
    script -qec "bash slow.sh" /dev/null >progress.txt 2>&1
    grep -q "rows/s" progress.txt && grep -q $'\r' progress.txt &&
        grep -q "ember: 20,000 rows in" progress.txt && ok ||
        bad "progress on a terminal" "$(tr '\r' '|' <progress.txt)"
else
    bad "progress on a terminal: script(1) is missing (bsdutils)"
fi

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
