#!/usr/bin/python3
"""Writes the catalogue of malformed models and inputs (tests/reliability, docs/RELIABILITY.md).

    /usr/bin/python3 make_catalogue.py OUTDIR FIXTURES_DIR [STAMP]

OUTDIR gets the model and input files and catalogue.tsv, one case per line:

    name  model  inputs  options  stage  status  exit  fragment

inputs   NAME=FILE[;NAME=FILE...] or '-'
options  load/session options for the API runner ('max_nodes=N', 'memory_limit=N', and
         'session_only': stop after creating the session) or '-';
         cases with options are not run through the CLI, which has no such flags
stage    where the case must stop: load, input, session, run, or ok (runs to the end)
status   ember_status name without the EMBER_ERR_ prefix (OK for ok)
exit     exit code of `ember run MODEL -i NAME=FILE ...`
fragment text the error message must contain (for ok cases: the printed outputs)

FIXTURES_DIR is tests/fixtures' output: its malformed models (truncated, cycle, dangling,
...) join the catalogue as they are, so that they also run through the CLI and valgrind.
Files are generated, never committed. Raw protobuf bytes are written where onnx.helper would
refuse to build the broken message.
"""
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = os.path.abspath(sys.argv[1])
fixtures = os.path.abspath(sys.argv[2])
os.makedirs(out, exist_ok=True)
os.makedirs(os.path.join(out, "ext"), exist_ok=True)
cases = []


def case(name, model, inputs, stage, status, exit_code, fragment, options="-"):
    assert "\t" not in fragment and fragment
    assert stage in ("load", "input", "session", "run", "ok")
    assert (stage == "ok") == (status == "OK")
    cases.append((name, model, inputs, options, stage, status, str(exit_code), fragment))


def path(name):
    return os.path.join(out, name)


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)
    return path(name)


def save(model, name):
    return write(name, model.SerializeToString())


# ---- protobuf wire helpers (for bytes onnx.helper will not produce) ----

def varint(n):
    b = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            b.append(byte | 0x80)
        else:
            b.append(byte)
            return bytes(b)


def key(field, wire):
    return varint(field << 3 | wire)


def ld(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def vi(field, n):
    return key(field, 0) + varint(n)


OPSET = [helper.make_opsetid("", 13)]
F = TensorProto.FLOAT


def tinfo(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def model(nodes, inputs, outputs, inits=(), opsets=OPSET, **kw):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=opsets, **kw)


def npy(name, array):
    np.save(path(name), array)
    return path(name)


def raw_npy(name, header, body=b""):
    """A .npy file with the given header dict text (padded like numpy does)."""
    h = header.encode()
    total = 10 + len(h) + 1
    h += b" " * ((64 - total % 64) % 64) + b"\n"
    return write(name, b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + body)


# A working model used by the input cases: y = Relu(x) + b, x: float32[batch, 4].
b4 = numpy_helper.from_array(np.array([0.5, -1, 2, 0], dtype=np.float32), "b")
relu_add = save(model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "b"], ["y"])],
                      [tinfo("x", F, ["batch", 4])], [tinfo("y", F, ["batch", 4])], [b4]), "relu_add.onnx")
x_ok = npy("x_ok.npy", np.arange(8, dtype=np.float32).reshape(2, 4) - 3)
good_bytes = open(relu_add, "rb").read()
X = f"x={x_ok}"

# ---------------------------------------------------------------------------------------------
# The fixtures' malformed models (tests/fixtures/make_fixtures.py), now with exit codes
# ---------------------------------------------------------------------------------------------
for name, status, fragment in [
        ("truncated.onnx", "PARSE", "not an ONNX model"),
        ("garbage.onnx", "PARSE", "not an ONNX model"),
        ("empty.onnx", "PARSE", "empty file"),
        ("cycle.onnx", "INVALID_MODEL", "cycle"),
        ("dangling.onnx", "INVALID_MODEL", "reads 'nowhere'"),
        ("missing_output.onnx", "INVALID_MODEL", "graph output 'z' is not produced"),
        ("duplicate_output.onnx", "INVALID_MODEL", "already written by another node"),
        ("bad_raw.onnx", "INVALID_MODEL", "raw_data has 15 bytes, its shape needs 16"),
        ("negative_dim.onnx", "INVALID_MODEL", "negative dimension -4"),
        ("huge_dim.onnx", "LIMIT", "larger than the 4294967296-byte limit"),
        ("short_typed.onnx", "INVALID_MODEL", "float_data holds 3 values, its shape needs 4"),
        ("no_domain.onnx", "INVALID_MODEL", "does not import"),
        ("unsupported.onnx", "UNSUPPORTED", "3 unsupported operators"),
        ("external/escape.onnx", "INVALID_MODEL", "escapes the model's folder"),
        ("external/absolute.onnx", "INVALID_MODEL", "escapes the model's folder"),
        ("external/past_end.onnx", "INVALID_MODEL", "runs past its end"),
        ("external/missing.onnx", "IO", "cannot open external data"),
]:
    case("fixture_" + name.replace("/", "_").replace(".onnx", ""), os.path.join(fixtures, name),
         "-", "load", status, 1, fragment)

# ---------------------------------------------------------------------------------------------
# Protobuf wire format
# ---------------------------------------------------------------------------------------------
case("wire_graph_as_varint", write("wire_graph_as_varint.onnx", vi(1, 8) + vi(7, 5)),
     "-", "load", "PARSE", 1, "not an ONNX model")
m = model([helper.make_node("Relu", ["x"], ["y"])], [tinfo("x", F, [2])], [tinfo("y", F, [2])])
graph = m.graph.SerializeToString()
# node 0's input (field 1, a string) written as fixed32
bad_node = ld(1, key(1, 5) + b"abcd" + ld(2, b"y") + ld(4, b"Relu"))
case("wire_string_as_fixed32",
     write("wire_string_as_fixed32.onnx", vi(1, 8) + ld(8, vi(2, 13)) + ld(7, bad_node)),
     "-", "load", "PARSE", 1, "not an ONNX model")
case("wire_length_past_end",
     write("wire_length_past_end.onnx", vi(1, 8) + key(7, 2) + varint(1000) + graph[:20]),
     "-", "load", "PARSE", 1, "not an ONNX model")
case("wire_truncated_varint", write("wire_truncated_varint.onnx", good_bytes + b"\x08\xff\xff"),
     "-", "load", "PARSE", 1, "not an ONNX model")
case("wire_field_number_zero", write("wire_field_number_zero.onnx", b"\x00\x01" + good_bytes),
     "-", "load", "PARSE", 1, "not an ONNX model")
# 100,000 graphs nested through If-style graph attributes: overflowed protobuf-c's recursive
# decoder (stack overflow) before the loader's nesting pre-check.
def nested(fields, inner):
    """Length-delimited fields nested outermost first around `inner`, built in linear time."""
    prefixes, length = [], len(inner)
    for field in reversed(fields):
        p = key(field, 2) + varint(length)
        prefixes.append(p)
        length += len(p)
    return b"".join(reversed(prefixes)) + inner


g = nested([1, 5, 6] * 100000, b"")  # GraphProto.node.attribute.g ...
case("nested_graphs_100000", write("nested_graphs_100000.onnx", vi(1, 8) + ld(8, vi(2, 13)) + ld(7, g)),
     "-", "load", "LIMIT", 1, "nest deeper than 256 levels")
t = nested([4, 1] * 100000, ld(1, vi(1, 1)))  # TypeProto.sequence_type.elem_type ...
case("nested_types_100000",
     write("nested_types_100000.onnx", vi(1, 8) + ld(8, vi(2, 13)) + ld(7, ld(11, ld(1, b"x") + ld(2, t)))),
     "-", "load", "LIMIT", 1, "nest deeper than 256 levels")

# protobuf-c allocates a 100-250 byte struct per message: 1.1 million empty nodes (2 bytes
# each) or dims are refused by counting them in the wire format, before decoding.
case("empty_nodes_1100000",
     write("empty_nodes_1100000.onnx", vi(1, 8) + ld(8, vi(2, 13)) + ld(7, ld(1, b"") * 1100000)),
     "-", "load", "LIMIT", 1, "more than 1000000 nodes (1100000 in the file)")
dims = ld(1, ld(2, ld(1, b"") * 1100000))  # TypeProto.tensor_type.shape.dim...
case("empty_dims_1100000",
     write("empty_dims_1100000.onnx", vi(1, 8) + ld(8, vi(2, 13)) + ld(7, ld(11, ld(1, b"x") + ld(2, dims)))),
     "-", "load", "LIMIT", "-", "protobuf messages, more than 1064576 (16 per allowed node)",
     options="max_nodes=1000")

# ---------------------------------------------------------------------------------------------
# Graph structure
# ---------------------------------------------------------------------------------------------
nm = onnx.ModelProto()
nm.ir_version = 8
nm.opset_import.add().version = 13
case("no_graph", write("no_graph.onnx", nm.SerializeToString()), "-", "load", "INVALID_MODEL", 1,
     "has no graph")
m = model([helper.make_node("Relu", ["x"], ["y"])], [tinfo("x", F, [2])], [tinfo("y", F, [2])])
m.graph.node[0].op_type = ""
case("node_without_op_type", save(m, "node_without_op_type.onnx"), "-", "load", "INVALID_MODEL", 1,
     "has no op_type")
case("self_loop", save(model([helper.make_node("Add", ["x", "y"], ["y"])], [tinfo("x", F, [2])],
                             [tinfo("y", F, [2])]), "self_loop.onnx"),
     "-", "load", "INVALID_MODEL", 1, "cycle")
w = numpy_helper.from_array(np.ones(2, np.float32), "w")
case("duplicate_initializer",
     save(model([helper.make_node("Add", ["x", "w"], ["y"])], [tinfo("x", F, [2])], [tinfo("y", F, [2])],
                [w, w]), "duplicate_initializer.onnx"),
     "-", "load", "INVALID_MODEL", 1, "initializer 'w' is defined twice")
case("duplicate_graph_input",
     save(model([helper.make_node("Relu", ["x"], ["y"])], [tinfo("x", F, [2]), tinfo("x", F, [2])],
                [tinfo("y", F, [2])]), "duplicate_graph_input.onnx"),
     "-", "load", "INVALID_MODEL", 1, "graph input 'x' is declared twice")
case("node_overwrites_input",
     save(model([helper.make_node("Relu", ["x"], ["x"])], [tinfo("x", F, [2])], [tinfo("x", F, [2])]),
          "node_overwrites_input.onnx"),
     "-", "load", "INVALID_MODEL", 1, "writes 'x', which is already a graph input")
nameless = numpy_helper.from_array(np.ones(2, np.float32), "")
case("initializer_without_name",
     save(model([helper.make_node("Relu", ["x"], ["y"])], [tinfo("x", F, [2])], [tinfo("y", F, [2])],
                [nameless]), "initializer_without_name.onnx"),
     "-", "load", "INVALID_MODEL", 1, "initializer #0 has no name")
n = helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.1)
n.attribute.append(helper.make_attribute("alpha", 0.2))
case("attribute_twice", save(model([n], [tinfo("x", F, [2])], [tinfo("y", F, [2])]), "attribute_twice.onnx"),
     "-", "load", "INVALID_MODEL", 1, "has attribute 'alpha' twice")
n = helper.make_node("LeakyRelu", ["x"], ["y"])
a = n.attribute.add()
a.type = onnx.AttributeProto.FLOAT
a.f = 0.5
case("attribute_without_name",
     save(model([n], [tinfo("x", F, [2])], [tinfo("y", F, [2])]), "attribute_without_name.onnx"),
     "-", "load", "INVALID_MODEL", 1, "has an attribute with no name")
n = helper.make_node("Relu", ["x"], ["y"], **{f"a{i}": i for i in range(300)})
case("attributes_300", save(model([n], [tinfo("x", F, [2])], [tinfo("y", F, [2])]), "attributes_300.onnx"),
     "-", "load", "LIMIT", 1, "has 300 attributes; the limit is 256")
n = helper.make_node("Constant", [], ["y"], value_float=1.0, value_int=2)
case("constant_two_values", save(model([n], [], [tinfo("y", F, [])]), "constant_two_values.onnx"),
     "-", "load", "INVALID_MODEL", 1, "must have exactly one attribute, has 2")
n = helper.make_node("Constant", [], ["y"], sparse_value=helper.make_sparse_tensor(
    helper.make_tensor("v", F, [1], [1.0]), helper.make_tensor("i", TensorProto.INT64, [1], [0]), [2]))
case("constant_sparse", save(model([n], [], [tinfo("y", F, [2])]), "constant_sparse.onnx"),
     "-", "load", "UNSUPPORTED", 1, "attribute 'sparse_value' has a type ember does not support")
# A model-local function that calls itself.
fn = helper.make_function("local", "Loop1", ["a"], ["b"], [helper.make_node("Loop1", ["a"], ["b"], domain="local")],
                          [helper.make_opsetid("local", 1)])
case("function_recursion",
     save(model([helper.make_node("Loop1", ["x"], ["y"], domain="local")], [tinfo("x", F, [2])], [tinfo("y", F, [2])],
                opsets=OPSET + [helper.make_opsetid("local", 1)], functions=[fn]), "function_recursion.onnx"),
     "-", "load", "LIMIT", 1, "functions nest deeper than 32 levels")
# 30 functions, each calling the next twice: 2 KB that would inline to 2^30 nodes (it took
# 700 MB before it was refused).
fns = [helper.make_function("local", f"F{i}", ["a"], ["b"],
                            [helper.make_node(f"F{i + 1}", ["a"], ["t"], domain="local"),
                             helper.make_node(f"F{i + 1}", ["t"], ["b"], domain="local")],
                            [helper.make_opsetid("", 13), helper.make_opsetid("local", 1)]) for i in range(30)]
fns.append(helper.make_function("local", "F30", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                                [helper.make_opsetid("", 13)]))
case("function_inlining_bomb",
     save(model([helper.make_node("F0", ["x"], ["y"], domain="local")], [tinfo("x", F, [2])], [tinfo("y", F, [2])],
                opsets=OPSET + [helper.make_opsetid("local", 1)], functions=fns), "function_inlining_bomb.onnx"),
     "-", "load", "LIMIT", 1, "more than 1000000 nodes once model-local functions are inlined")
chain = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(200)]
case("max_nodes_option",
     save(model(chain, [tinfo("t0", F, [2])], [tinfo("t200", F, [2])]), "chain200.onnx"),
     "-", "load", "LIMIT", "-", "more than 100 nodes", options="max_nodes=100")
# If nested 40 deep (the subgraph limit is 32).
leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["y0"])], "leaf", [], [tinfo("y0", F, [2])])
inner = leaf
for d in range(40):
    node = helper.make_node("If", ["c"], [f"y{d + 1}"], then_branch=inner, else_branch=leaf)
    inner = helper.make_graph([node], f"g{d}", [], [tinfo(f"y{d + 1}", F, [2])])
top = model(list(inner.node), [tinfo("c", TensorProto.BOOL, []), tinfo("x", F, [2])], [tinfo("y40", F, [2])])
case("subgraphs_nested_40", save(top, "subgraphs_nested_40.onnx"), "-", "load", "LIMIT", 1,
     "subgraphs nest deeper than 32 levels")
map_type = onnx.TypeProto()
map_type.map_type.key_type = TensorProto.INT64
map_type.map_type.value_type.CopyFrom(helper.make_tensor_type_proto(F, [2]))
case("map_graph_input",
     save(model([helper.make_node("Identity", ["m"], ["y"])], [helper.make_value_info("m", map_type)],
                [tinfo("y", F, [2])]), "map_graph_input.onnx"),
     "-", "load", "UNSUPPORTED", 1, "has a map type")
# A sequence passed through Identity to an output declared as a tensor.
seq_in = helper.make_tensor_sequence_value_info("s", F, [2])
case("sequence_output_declared_tensor",
     save(model([helper.make_node("Identity", ["s"], ["y"])], [seq_in], [tinfo("y", F, [2])]),
          "sequence_output_declared_tensor.onnx"),
     "-", "load", "INVALID_MODEL", 1, "graph output 'y' is declared as float32[2] but computed as")

# Too few inputs for the operator, or a required one left empty: kernels read past their
# input array (found by the fuzzer: GatherElements with one input).
ind = numpy_helper.from_array(np.zeros((2,), np.int64), "ind")
case("missing_required_input",
     save(model([helper.make_node("GatherElements", ["x"], ["y"])], [tinfo("x", F, [2])], [tinfo("y", F, [2])]),
          "missing_required_input.onnx"),
     "-", "load", "INVALID_MODEL", 1, "has 1 input; GatherElements-13 takes 2 to 2")
case("required_input_empty",
     save(model([helper.make_node("GatherElements", ["", "ind"], ["y"])], [], [tinfo("y", F, [2])], [ind]),
          "required_input_empty.onnx"),
     "-", "load", "INVALID_MODEL", 1, "leaves input 0 empty, which GatherElements requires")
case("variadic_input_empty",  # fuzzer: Einsum with an empty input dereferenced NULL
     save(model([helper.make_node("Concat", ["x", ""], ["y"], axis=0)], [tinfo("x", F, [2])], [tinfo("y", F, None)]),
          "variadic_input_empty.onnx"),
     "-", "load", "INVALID_MODEL", 1, "leaves input 1 empty, which Concat requires")
case("too_many_outputs",
     save(model([helper.make_node("Identity", ["x"], ["y", "z"])], [tinfo("x", F, [2])], [tinfo("y", F, [2])]),
          "too_many_outputs.onnx"),
     "-", "load", "INVALID_MODEL", 1, "has 2 outputs; Identity-13 gives 1 to 1")

# ---------------------------------------------------------------------------------------------
# Tensors inside the model
# ---------------------------------------------------------------------------------------------
def init_model(t, name):
    return save(model([helper.make_node("Identity", [t.name], ["y"])], [], [tinfo("y", t.data_type or F, None)],
                      [t]), name)


t = TensorProto(name="w", data_type=TensorProto.STRING, dims=[2], string_data=[b"a"])
case("string_initializer_short", init_model(t, "string_initializer_short.onnx"), "-", "load",
     "INVALID_MODEL", 1, "string_data holds 1 strings, its shape needs 2")
t = TensorProto(name="w", data_type=TensorProto.COMPLEX64, dims=[1], float_data=[1, 2])
case("complex_initializer", init_model(t, "complex_initializer.onnx"), "-", "load", "UNSUPPORTED", 1,
     "element type complex64")
t = TensorProto(name="w", dims=[1], float_data=[1])
case("initializer_without_type", init_model(t, "initializer_without_type.onnx"), "-", "load",
     "INVALID_MODEL", 1, "tensor 'w' has no data type")
t = numpy_helper.from_array(np.ones([1] * 9, np.float32), "w")
case("rank_9_initializer", init_model(t, "rank_9_initializer.onnx"), "-", "load", "UNSUPPORTED", 1,
     "has rank 9; ember supports up to 8")
t = numpy_helper.from_array(np.ones(4, np.float32), "w")
t.raw_data = t.raw_data + b"\0" * 4
case("raw_data_too_long", init_model(t, "raw_data_too_long.onnx"), "-", "load", "INVALID_MODEL", 1,
     "raw_data has 20 bytes, its shape needs 16")
t = TensorProto(name="w", data_type=TensorProto.INT64, dims=[3], int64_data=[1, 2, 3, 4])
case("typed_data_too_long", init_model(t, "typed_data_too_long.onnx"), "-", "load", "INVALID_MODEL", 1,
     "int64_data holds 4 values, its shape needs 3")
t = TensorProto(name="w", data_type=F, dims=[1 << 31, 4])  # 32 GiB declared, no data
case("initializer_32GiB", init_model(t, "initializer_32GiB.onnx"), "-", "load", "LIMIT", 1,
     "larger than the 4294967296-byte limit")
t = TensorProto(name="w", data_type=F, dims=[1 << 62, 1 << 62, 16])  # element count overflows
case("initializer_dims_overflow", init_model(t, "initializer_dims_overflow.onnx"), "-", "load", "LIMIT", 1,
     "larger than the")
t = numpy_helper.from_array(np.ones(2, np.float32), "w")
t.segment.begin = 0
t.segment.end = 1
case("segmented_initializer", init_model(t, "segmented_initializer.onnx"), "-", "load", "UNSUPPORTED", 1,
     "segmented tensors are not supported")
case("empty_initializer_ok",
     save(model([helper.make_node("Identity", ["w"], ["y"])], [], [tinfo("y", F, [0, 3])],
                [numpy_helper.from_array(np.zeros((0, 3), np.float32), "w")]), "empty_initializer_ok.onnx"),
     "-", "ok", "OK", 0, "y: float32[0, 3] = []")


# External data (beside the model in ext/).
def external(name, entries, dims=(4,)):
    t = TensorProto(name="w", data_type=F, dims=list(dims), data_location=TensorProto.EXTERNAL)
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    m = model([helper.make_node("Identity", ["w"], ["y"])], [], [tinfo("y", F, list(dims))], [t])
    return save(m, os.path.join("ext", name))


write(os.path.join("ext", "w.bin"), np.arange(4, dtype=np.float32).tobytes())
case("external_ok", external("ok.onnx", [("location", "w.bin")]), "-", "ok", "OK", 0,
     "y: float32[4] = [0, 1, 2, 3]")
case("external_length_mismatch", external("length.onnx", [("location", "w.bin"), ("length", "12")]),
     "-", "load", "INVALID_MODEL", 1, "external data length 12 does not match the 16 bytes")
case("external_offset_not_number", external("offset.onnx", [("location", "w.bin"), ("offset", "-8")]),
     "-", "load", "INVALID_MODEL", 1, "external data offset '-8' is not a number")
case("external_offset_huge",
     external("offset_huge.onnx", [("location", "w.bin"), ("offset", str(2**64 - 8))]),
     "-", "load", "INVALID_MODEL", 1, "runs past its end")
case("external_without_location", external("nolocation.onnx", [("offset", "0")]), "-", "load",
     "INVALID_MODEL", 1, "external data without location")
if not os.path.lexists(path("ext/link.bin")):
    os.symlink("/etc/hostname", path("ext/link.bin"))
case("external_symlink_escape", external("symlink.onnx", [("location", "link.bin")]), "-", "load",
     "INVALID_MODEL", 1, "escapes the model's folder")
os.makedirs(path("ext/dir.bin"), exist_ok=True)
case("external_directory", external("directory.onnx", [("location", "dir.bin")]), "-", "load", "IO", 1,
     "cannot read external data")
if not os.path.exists(path("ext/fifo.bin")):
    os.mkfifo(path("ext/fifo.bin"))  # opening it blocked the load forever
case("external_fifo", external("fifo.onnx", [("location", "fifo.bin")]), "-", "load", "IO", 1,
     "cannot read external data")
# 4 GiB of external data in a file that does not exist: the tensor was allocated (and zeroed)
# before the file was looked at (fuzz_tensor: 2.5 GB from a 110-byte TensorProto).
case("external_missing_4GiB", external("missing4g.onnx", [("location", "nothing.bin")], dims=(1 << 30,)),
     "-", "load", "IO", 1, "cannot open external data")
case("external_short_4GiB", external("short4g.onnx", [("location", "w.bin")], dims=(1 << 30,)),
     "-", "load", "INVALID_MODEL", 1, "runs past its end")
case("external_huge_declared", external("huge.onnx", [("location", "w.bin")], dims=(1 << 40,)), "-",
     "load", "LIMIT", 1, "larger than the 4294967296-byte limit")

# ---------------------------------------------------------------------------------------------
# Declared types and shapes of graph inputs
# ---------------------------------------------------------------------------------------------
m = model([helper.make_node("Relu", ["x"], ["y"])], [tinfo("x", F, [2])], [tinfo("y", F, [2])])
m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -3
case("negative_declared_dim", save(m, "negative_declared_dim.onnx"), "-", "load", "INVALID_MODEL", 1,
     "'x' declares a negative dimension -3")
m = model([helper.make_node("Relu", ["x"], ["y"])], [tinfo("x", F, [1] * 9)], [tinfo("y", F, None)])
case("rank_9_input", save(m, "rank_9_input.onnx"), "-", "load", "UNSUPPORTED", 1, "'x' has rank 9")
m = model([helper.make_node("Relu", ["x"], ["y"])], [tinfo("x", F, [1 << 40, 1 << 40])], [tinfo("y", F, None)])
case("huge_declared_input", save(m, "huge_declared_input.onnx"), X, "run", "SHAPE", 1,
     "input 'x' has shape float32[2,4], the model expects float32[1099511627776,1099511627776]")

# ---------------------------------------------------------------------------------------------
# Inputs given to a run
# ---------------------------------------------------------------------------------------------
case("input_dtype_mismatch", relu_add, f"x={npy('x_int64.npy', np.ones((2, 4), np.int64))}", "run",
     "SHAPE", 1, "input 'x' has type int64, the model expects float32")
case("input_wrong_rank", relu_add, f"x={npy('x_rank3.npy', np.ones((2, 4, 1), np.float32))}", "run",
     "SHAPE", 1, "input 'x' has shape float32[2,4,1]")
case("input_wrong_dim", relu_add, f"x={npy('x_dim5.npy', np.ones((2, 5), np.float32))}", "run",
     "SHAPE", 1, "input 'x' has shape float32[2,5], the model expects float32[?,4]")
two = save(model([helper.make_node("Add", ["a", "b"], ["y"])], [tinfo("a", F, ["n"]), tinfo("b", F, ["n"])],
                 [tinfo("y", F, ["n"])]), "two_inputs.onnx")
a2 = npy("a2.npy", np.ones(2, np.float32))
case("input_missing", two, f"a={a2}", "run", "INVALID_ARGUMENT", 1, "required input 'b' is missing")
case("input_unknown_name", relu_add, f"z={x_ok}", "run", "INVALID_ARGUMENT", 1, "the model has no input 'z'")
case("input_given_twice", two, f"a={a2};a={a2}", "run", "INVALID_ARGUMENT", 1, "input 'a' is given twice")
case("input_nan_inf", two, f"a={npy('a_nan.npy', np.array([np.nan, np.inf, -np.inf, 3], np.float32))};"
     f"b={npy('b_nan.npy', np.array([1, 1, -1, np.inf], np.float32))}", "ok", "OK", 0,
     "y: float32[4] = [nan, inf, -inf, inf]")
case("input_zero_batch", relu_add, f"x={npy('x_empty.npy', np.zeros((0, 4), np.float32))}", "ok", "OK", 0,
     "y: float32[0, 4] = []")
case("input_npy_truncated", relu_add,
     f"x={raw_npy('x_truncated.npy', repr({'descr': '<f4', 'fortran_order': False, 'shape': (2, 4)}), bytes(20))}",
     "input", "PARSE", 2, "npy: data is shorter than the shape needs")
case("input_npy_huge_shape", relu_add,
     f"x={raw_npy('x_huge.npy', repr({'descr': '<f4', 'fortran_order': False, 'shape': (1 << 40, 1 << 40)}))}",
     "input", "PARSE", 2, "npy: data is shorter than the shape needs")
case("input_npy_negative_dim", relu_add,
     f"x={raw_npy('x_negative.npy', repr({'descr': '<f4', 'fortran_order': False, 'shape': (2, -4)}))}",
     "input", "PARSE", 2, "npy: bad shape in header")
case("input_npy_fortran", relu_add,
     f"x={npy('x_fortran.npy', np.asfortranarray(np.ones((2, 4), np.float32)))}", "input", "UNSUPPORTED", 2,
     "Fortran-ordered arrays are not supported")
case("input_npy_big_endian", relu_add, f"x={npy('x_be.npy', np.ones((2, 4), '>f4'))}", "input",
     "UNSUPPORTED", 2, "npy: element type '>f4' is not supported")
header_past_end = write("x_header.npy", b"\x93NUMPY\x01\x00\xff\xff{}")
case("input_npy_header_past_end", relu_add, f"x={header_past_end}",
     "input", "PARSE", 2, "npy: header runs past the end of the file")
case("input_npy_no_shape", relu_add,
     f"x={raw_npy('x_noshape.npy', repr({'descr': '<f4', 'fortran_order': False}))}", "input", "PARSE", 2,
     "npy: header lacks descr, fortran_order or shape")
case("input_garbage", relu_add, f"x={write('x_garbage.bin', bytes(range(256)))}", "input", "PARSE", 2,
     "not a valid TensorProto")
pb = numpy_helper.from_array(np.ones((2, 4), np.float32), "x")
pb.raw_data = pb.raw_data[:-4]
case("input_pb_short_raw", relu_add, f"x={write('x_short.pb', pb.SerializeToString())}", "input",
     "INVALID_MODEL", 2, "raw_data has 28 bytes, its shape needs 32")
pb = TensorProto(name="x", data_type=F, dims=[2, 4], data_location=TensorProto.EXTERNAL)
e = pb.external_data.add()
e.key, e.value = "location", "/etc/passwd"
case("input_pb_external", relu_add, f"x={write('x_external.pb', pb.SerializeToString())}", "input",
     "INVALID_ARGUMENT", 2, "needs the model's folder")
case("input_empty_file", relu_add, f"x={write('x_empty.pb', b'')}", "input", "INVALID_MODEL", 2,
     "tensor '' has no data type")
case("input_missing_file", relu_add, f"x={path('no_such_file.npy')}", "input", "IO", 2, "cannot open")

# ---------------------------------------------------------------------------------------------
# Resource bombs at run time: shapes computed from input values
# ---------------------------------------------------------------------------------------------
I64 = TensorProto.INT64


def shape_model(op, name, extra_inputs=(), inits=(), **attrs):
    """y = op(inputs...) where some inputs come from files."""
    ins = [i for i, _ in extra_inputs]
    return save(model([helper.make_node(op, ins, ["y"], **attrs)],
                      [tinfo(i, t, None) for i, t in extra_inputs if i not in [x.name for x in inits]],
                      [tinfo("y", F, None)], inits), name)


one = numpy_helper.from_array(np.array([1.5], np.float32), "one")
case("expand_to_terabytes", shape_model("Expand", "expand.onnx", [("one", F), ("shape", I64)], [one]),
     f"shape={npy('shape_huge.npy', np.array([1000000, 1000000], np.int64))}", "run", "LIMIT", 1,
     "memory limit")
case("expand_overflowing_shape", shape_model("Expand", "expand.onnx", [("one", F), ("shape", I64)], [one]),
     f"shape={npy('shape_overflow.npy', np.array([1 << 40, 1 << 40, 1 << 40], np.int64))}", "run", "LIMIT", 1,
     "too large")
cshape = numpy_helper.from_array(np.array([100000, 100000], np.int64), "cshape")
case("constant_of_shape_40GB",
     save(model([helper.make_node("ConstantOfShape", ["cshape"], ["y"])], [], [tinfo("y", F, None)], [cshape]),
          "constant_of_shape_40GB.onnx"), "-", "run", "LIMIT", 1, "memory limit")
case("constant_of_shape_negative", shape_model("ConstantOfShape", "cos.onnx", [("shape", I64)]),
     f"shape={npy('shape_negative.npy', np.array([2, -3], np.int64))}", "run", "INVALID_MODEL", 1, "shape[1] is -3")
case("range_1e18_elements",
     save(model([helper.make_node("Range", ["s", "l", "d"], ["y"])],
                [tinfo("s", I64, []), tinfo("l", I64, []), tinfo("d", I64, [])], [tinfo("y", I64, None)]),
          "range.onnx"),
     f"s={npy('s0.npy', np.array(0, np.int64))};l={npy('l_huge.npy', np.array(10**18, np.int64))};"
     f"d={npy('d1.npy', np.array(1, np.int64))}", "run", "LIMIT", 1,
     "Range, opset 13): a run needs more than the session's memory limit of 8589934592 bytes")
case("range_zero_delta", path("range.onnx"),
     f"s={path('s0.npy')};l={path('l_huge.npy')};d={npy('d0.npy', np.array(0, np.int64))}", "run",
     "INVALID_MODEL", 1, "delta is 0")
data3 = numpy_helper.from_array(np.arange(3, dtype=np.float32), "data")
case("gather_index_out_of_range",
     shape_model("Gather", "gather.onnx", [("data", F), ("idx", I64)], [data3]),
     f"idx={npy('idx10.npy', np.array([10], np.int64))}", "run", "INVALID_ARGUMENT", 1,
     "index 10 at position 0 is out of range [-3, 3)")
case("reshape_wrong_count",
     save(model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [tinfo("x", F, ["batch", 4]), tinfo("shape", I64, [2])],
                [tinfo("y", F, None)]), "reshape.onnx"),
     f"x={x_ok};shape={npy('shape33.npy', np.array([3, 3], np.int64))}", "run", "SHAPE", 1,
     "cannot reshape float32[2,4] into 9 elements")
case("tile_huge_repeats", shape_model("Tile", "tile.onnx", [("one", F), ("rep", I64)], [one]),
     f"rep={npy('rep_huge.npy', np.array([1 << 40], np.int64))}", "run", "LIMIT", 1,
     "4398046511104 more requested")
case("pad_huge", shape_model("Pad", "pad.onnx", [("one", F), ("pads", I64)], [one]),
     f"pads={npy('pads_huge.npy', np.array([1 << 40, 1 << 40], np.int64))}", "run", "LIMIT", 1,
     "8796093022212 more requested")
case("transpose_bad_perm",
     save(model([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 0])], [tinfo("x", F, ["batch", 4])],
                [tinfo("y", F, None)]), "transpose_bad_perm.onnx"), X, "run", "INVALID_MODEL", 1,
     "perm is not a permutation of 0..1")  # symbolic batch: checked when the shape is known
# ArgMax over an empty axis of an empty input whose other dims are not empty: read past the
# input (found by the fuzzer).
case("argmax_empty_axis",
     save(model([helper.make_node("ArgMax", ["x"], ["y"], axis=0)], [tinfo("x", F, [0, 3])],
                [tinfo("y", TensorProto.INT64, None)]), "argmax_empty_axis.onnx"),
     "-", "load", "SHAPE", 1, "axis 0 has size 0: no element to pick")
# ai.ember operators written into a model with too few inputs, or a required one empty: their
# kernels indexed inputs the node does not have (review). Checked at load.
EMBER_OPSETS = OPSET + [helper.make_opsetid("ai.ember", 1)]
# (FusedMBConv exists on AVX-512 CPUs only, and valgrind's CPU has none: tests/unit/
# test_passes.c checks its arity.)
for op, ins, fragment in (
        ("FusedConv", ["x"], "ai.ember:FusedConv takes 2 to 4"),
        ("FusedConv", ["x", ""], "leaves input 1 empty"),
        ("FusedGemm", ["x"], "ai.ember:FusedGemm takes 2 to 3"),
        ("AddLayerNormalization", ["x", "x"], "takes 3 to 4")):
    name = "ember_%s_%d_inputs%s" % (op.lower(), len(ins), "_empty" if "" in ins else "")
    case(name,
         save(model([helper.make_node(op, ins, ["y"], domain="ai.ember")],
                    [tinfo("x", F, [1, 3, 8, 8])], [tinfo("y", F, None)], opsets=EMBER_OPSETS),
              name + ".onnx"),
         "-", "load", "INVALID_MODEL", 1, fragment)
# MaxPool with a kernel 2^31 wide and SAME padding: the fast path looped over every tap of
# the kernel for each row (minutes for a 100-byte model; found by the fuzzer as a slow unit).
case("maxpool_kernel_2e31",
     save(model([helper.make_node("MaxPool", ["x"], ["y"], auto_pad="SAME_LOWER", kernel_shape=[2, 2**31 - 1])],
                [tinfo("x", F, [1, 1, 4, 4])], [tinfo("y", F, None)]), "maxpool_kernel_2e31.onnx"),
     f"x={npy('x4x4.npy', np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))}", "ok", "OK", 0,
     "y: float32[1, 1, 4, 4] = [3, 3, 3, 3, 7, 7, 7, 7,")
# Sum of two one-element inputs and a longer one: both operands of the first addition are
# broadcast along the inner dim, and the kernel read one of them as a full row (fuzzer).
case("sum_two_scalars_broadcast",
     save(model([helper.make_node("Sum", ["a", "b", "c"], ["y"])],
                [tinfo("a", F, [1]), tinfo("b", F, [1]), tinfo("c", F, [5])], [tinfo("y", F, [5])]),
          "sum_two_scalars_broadcast.onnx"),
     f"a={npy('a1.npy', np.array([2], np.float32))};b={npy('b1.npy', np.array([3], np.float32))};"
     f"c={npy('c5.npy', np.arange(1, 6, dtype=np.float32))}", "ok", "OK", 0, "y: float32[5] = [6, 7, 8, 9, 10]")
# Loop whose scan output grows by 1 MiB per iteration, M = 10^9 (it grew until the process
# was killed: scan outputs lived outside the run's memory limit).
body = helper.make_graph(
    [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["big"], ["scan"])],
    "body", [tinfo("i", I64, []), tinfo("cond_in", TensorProto.BOOL, [])],
    [tinfo("cond_out", TensorProto.BOOL, []), tinfo("scan", F, [262144])])
loop = model([helper.make_node("Loop", ["M", ""], ["y"], body=body)], [], [tinfo("y", F, None)],
             [numpy_helper.from_array(np.array(10**9, np.int64), "M"),
              numpy_helper.from_array(np.ones(262144, np.float32), "big")])
case("loop_scan_output_bomb", save(loop, "loop_scan_output_bomb.onnx"), "-", "run", "LIMIT", "-",
     "outputs of 33 iterations need more than the session's memory limit of 67108864 bytes",
     options="memory_limit=67108864")
# A Loop of 10^12 iterations whose inputs are all constants: constant folding ran it inside
# ember_session_create, which never returned. Control flow is no longer folded.
lbody = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                           helper.make_node("Add", ["v_in", "lone"], ["v_out"])],
                          "body", [tinfo("i", I64, []), tinfo("cond_in", TensorProto.BOOL, []), tinfo("v_in", F, [])],
                          [tinfo("cond_out", TensorProto.BOOL, []), tinfo("v_out", F, [])],
                          initializer=[numpy_helper.from_array(np.array(1, np.float32), "lone")])
lfold = model([helper.make_node("Loop", ["M", "", "v0"], ["y0"], body=lbody), helper.make_node("Identity", ["y0"], ["y"])],
              [], [tinfo("y", F, [])], [numpy_helper.from_array(np.array(10**12, np.int64), "M"),
                                        numpy_helper.from_array(np.array(0, np.float32), "v0")])
case("loop_constant_not_folded", save(lfold, "loop_constant_not_folded.onnx"), "-", "ok", "OK", "-",
     "session created", options="session_only")
case("if_cond_not_scalar",
     save(model([helper.make_node("If", ["c"], ["y"], then_branch=leaf, else_branch=leaf)],
                [tinfo("c", TensorProto.BOOL, None), tinfo("x", F, [2])], [tinfo("y", F, [2])]), "if_cond.onnx"),
     f"c={npy('c3.npy', np.array([True, False, True]))};x={a2}", "run", "SHAPE", 1, "If, opset 13): cond must hold one value")

# ---------------------------------------------------------------------------------------------
# Models for the concurrency test (tests/reliability/concurrency.c), not catalogue cases
# ---------------------------------------------------------------------------------------------
rng = np.random.default_rng(7)


def weight(name, *shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


# A small CNN classifier: x[batch, 3, 16, 16] -> probabilities[batch, 10].
cnn = model([helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], transB=1),
             helper.make_node("Softmax", ["logits"], ["y"], axis=1)],
            [tinfo("x", F, ["batch", 3, 16, 16])], [tinfo("y", F, ["batch", 10])],
            [weight("w1", 8, 3, 3, 3), weight("b1", 8), weight("w2", 16, 8, 3, 3), weight("b2", 16),
             weight("w3", 10, 16), weight("b3", 10)])
save(cnn, "concurrency_cnn.onnx")
# Shape, normalization, reduction, gather and control-flow kernels: x[batch, 6, 8] -> y.
then_g = helper.make_graph([helper.make_node("ReduceMean", ["t"], ["o"], axes=[2], keepdims=1)], "then", [],
                           [tinfo("o", F, ["batch", 8, 1])])
else_g = helper.make_graph([helper.make_node("ReduceMax", ["t"], ["o"], axes=[2], keepdims=1)], "else", [],
                           [tinfo("o", F, ["batch", 8, 1])])
misc = model([helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["n"], axis=-1),
              helper.make_node("Transpose", ["n"], ["t"], perm=[0, 2, 1]),
              helper.make_node("ReduceSum", ["t", "axes12"], ["s"], keepdims=0),
              helper.make_node("Gather", ["s", "zero"], ["s0"], axis=0),
              helper.make_node("Cast", ["s0"], ["s0b"], to=TensorProto.BOOL),
              helper.make_node("If", ["s0b"], ["m"], then_branch=then_g, else_branch=else_g),
              helper.make_node("Pad", ["m", "pads"], ["pm"], mode="edge"),
              helper.make_node("Resize", ["pm", "", "scales"], ["y"], mode="linear")],
             [tinfo("x", F, ["batch", 6, 8])], [tinfo("y", F, ["batch", 16, 6])],
             [weight("gamma", 8), weight("beta", 8), numpy_helper.from_array(np.array(0, np.int64), "zero"),
              numpy_helper.from_array(np.array([1, 2], np.int64), "axes12"),
              numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 1], np.int64), "pads"),
              numpy_helper.from_array(np.array([1, 2, 2], np.float32), "scales")],
             opsets=[helper.make_opsetid("", 17)])
save(misc, "concurrency_misc.onnx")

with open(os.path.join(out, "catalogue.tsv"), "w") as f:
    f.write("# name\tmodel\tinputs\toptions\tstage\tstatus\texit\tfragment\n")
    for c in cases:
        f.write("\t".join(c) + "\n")
names = [c[0] for c in cases]
assert len(names) == len(set(names)), "duplicate case names"
if len(sys.argv) > 3:
    open(sys.argv[3], "w").close()
print(f"{len(cases)} catalogue cases written to {out}")
