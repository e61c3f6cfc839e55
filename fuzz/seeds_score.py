#!/usr/bin/python3
"""Seed corpus of fuzz_score (scripts/fuzz.sh): small CSV, TSV and JSON Lines files in the
layout fuzz/entry_score.c reads (first byte: format | 4 nested x | 8 header names / id key)."""
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
csv_rows = [
    'r1,0.5,-1,2e3,inf,1,-2,note\n',
    '"r,2",1,2,3,4,5,6,"quoted ""text"""\n',
    'r3,nan,0x1p-3,1e-45,-0,9223372036854775807,-9223372036854775808,\r\n',
    '"multi\nline",1,1,1,1,1,1,x\n',
    'bad,1,2,3\n',
    'r5, 1 ,2,3,4,5,6,7\n',
]
jsonl_rows = [
    '{"id": 1, "x": [0.5, -1, 2e3, 1e38], "k": [1, -2]}\n',
    '{"id": "a\\u00e9\\n", "x": [[1, 2], [3, 4]], "k": [9007199254740993, 0], "other": {"a": [1]}}\n',
    '{"x": [1, 2, 3], "k": [1, 2]}\n',
    '{"id": null, "x": 5, "k": [1.5, 2]}\n',
    '  \n',
    '{"id": [1,2], "x": [1,2,3,4], "k": [1,2], "x": [5,6,7,8]}\n',
]
seeds = {
    "csv": (0, "".join(csv_rows)),
    "csv_names": (8, "".join(csv_rows)),
    "tsv": (1, "".join(r.replace(",", "\t") for r in csv_rows)),
    "jsonl": (2, "".join(jsonl_rows)),
    "jsonl_nested_id": (2 | 4 | 8, "".join(jsonl_rows)),
}
for name, (first, text) in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([first]) + text.encode())
