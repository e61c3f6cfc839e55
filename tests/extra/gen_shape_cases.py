#!/usr/bin/python3
"""Extra backend-format cases for the shape / pad / resize kernels, beyond the ONNX node tests.

Expected outputs come from numpy (slicing, transpose, np.pad, tile, broadcast, astype) and
from PyTorch's interpolate for Resize modes it shares with ONNX; a few Resize modes are checked
against a direct transcription of the spec formulas (one output at a time, in float64).

    /usr/bin/python3 tests/extra/gen_shape_cases.py OUTDIR
    build/tools/ember test OUTDIR --atol 1e-5

(atol 1e-5: PyTorch and ember both compute Resize in float32 and round differently near 0.)
"""
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
rng = np.random.default_rng(1234)
OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ember-shape-cases"


def save_case(name, op, inputs, outputs, attrs=None, opset=13, const_inputs=None):
    """inputs: list of (name, array or None); None = omitted optional input ('')."""
    const_inputs = const_inputs or {}
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    node_inputs = [n if a is not None else "" for n, a in inputs]
    node = helper.make_node(op, node_inputs, [n for n, _ in outputs], **(attrs or {}))
    g_inputs, inits = [], []
    for n, a in inputs:
        if a is None:
            continue
        if n in const_inputs:
            inits.append(numpy_helper.from_array(a, n))
        else:
            g_inputs.append(helper.make_tensor_value_info(
                n, np_to_onnx(a.dtype), a.shape))
    g_outputs = [helper.make_tensor_value_info(n, np_to_onnx(a.dtype), a.shape)
                 for n, a in outputs]
    graph = helper.make_graph([node], name, g_inputs, g_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    k = 0
    for n, a in inputs:
        if a is None or n in const_inputs:
            continue
        with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
        k += 1
    for k, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())


def np_to_onnx(dt):
    from onnx.mapping import NP_TYPE_TO_TENSOR_TYPE
    return NP_TYPE_TO_TENSOR_TYPE[np.dtype(dt)]


def i64(*v):
    return np.array(v, dtype=np.int64)


# ---- Slice ------------------------------------------------------------------------------------

def slice_ref(x, starts, ends, axes, steps):
    sl = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        d = x.shape[a]
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
        else:
            s, e = min(max(s, 0), d - 1), min(max(e, -1), d - 1)
        sl[a] = slice(s, None if e < 0 else e, st)
    return x[tuple(sl)]


def gen_slice():
    specials = [INT64_MAX, INT64_MIN, -1, 0, 1, 2, -2, 3, 100, -100]
    for case in range(40):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(0 if case % 10 == 9 else 1, 6, rank))
        x = rng.standard_normal(shape).astype(np.float32)
        n = int(rng.integers(1, rank + 1))
        axes = list(rng.permutation(rank)[:n])
        starts, ends, steps = [], [], []
        for a in axes:
            starts.append(int(rng.choice(specials)) if rng.random() < 0.5 else
                          int(rng.integers(-shape[a] - 1, shape[a] + 2)))
            ends.append(int(rng.choice(specials)) if rng.random() < 0.5 else
                        int(rng.integers(-shape[a] - 1, shape[a] + 2)))
            steps.append(int(rng.choice([1, 2, 3, -1, -2, -3, INT64_MAX, INT64_MIN + 1])))
        neg_axes = [a - rank if rng.random() < 0.5 else a for a in axes]
        y = slice_ref(x, starts, ends, axes, steps)
        save_case(f"ext_slice_{case}", "Slice",
                  [("x", x), ("starts", i64(*starts)), ("ends", i64(*ends)),
                   ("axes", i64(*neg_axes)), ("steps", i64(*steps))], [("y", y)])
    # Slice-1: attributes, int32 starts in later opsets
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    save_case("ext_slice_v1", "Slice", [("x", x)], [("y", x[1:3, :, -4:INT64_MAX])],
              attrs=dict(starts=[1, -4], ends=[3, 1 << 40], axes=[0, 2]), opset=9)
    save_case("ext_slice_int32_inputs", "Slice",
              [("x", x), ("starts", np.array([3, -1], np.int32)),
               ("ends", np.array([0, -7], np.int32)), ("axes", np.array([0, 2], np.int32)),
               ("steps", np.array([-1, -2], np.int32))], [("y", x[3:0:-1, :, -1::-2])])


# ---- Transpose --------------------------------------------------------------------------------

def gen_transpose():
    dtypes = [np.float32, np.int8, np.float16, np.int64, np.bool_, np.uint16, np.float64]
    for case in range(30):
        rank = int(rng.integers(1, 7))
        shape = tuple(int(v) for v in rng.integers(1, 6 if rank > 3 else 40, rank))
        dt = dtypes[case % len(dtypes)]
        x = (rng.standard_normal(shape) * 50).astype(dt)
        perm = [int(v) for v in rng.permutation(rank)]
        save_case(f"ext_transpose_{case}", "Transpose", [("x", x)],
                  [("y", np.transpose(x, perm))], attrs=dict(perm=perm))
    x = rng.standard_normal((3, 1, 70, 1, 45)).astype(np.float32)
    save_case("ext_transpose_default_perm", "Transpose", [("x", x)], [("y", x.T)])
    x = rng.standard_normal((2, 3, 0, 4)).astype(np.float32)
    save_case("ext_transpose_empty", "Transpose", [("x", x)],
              [("y", np.transpose(x, (3, 0, 2, 1)))], attrs=dict(perm=[3, 0, 2, 1]))
    x = rng.standard_normal((1, 64, 33, 17)).astype(np.float32)
    save_case("ext_transpose_nchw_nhwc", "Transpose", [("x", x)],
              [("y", np.transpose(x, (0, 2, 3, 1)))], attrs=dict(perm=[0, 2, 3, 1]))


# ---- Pad ----------------------------------------------------------------------------------------

def pad_ref(x, pads, mode, value):
    r = x.ndim
    begin, end = pads[:r], pads[r:]
    sl = tuple(slice(max(0, -b), x.shape[i] - max(0, -e)) for i, (b, e) in
               enumerate(zip(begin, end)))
    x = x[sl]
    width = [(max(0, b), max(0, e)) for b, e in zip(begin, end)]
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode=mode)


def gen_pad():
    for case in range(32):
        mode = ["constant", "reflect", "edge", "wrap"][case % 4]
        rank = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(2, 6, rank))
        x = rng.standard_normal(shape).astype(np.float32 if case % 3 else np.int32)
        lim = 1 if mode == "reflect" else 4
        pads = [int(rng.integers(-1, lim + 1)) for _ in range(2 * rank)]
        if mode == "reflect":  # numpy pads beyond one period differently: stay within
            pads = [min(p, shape[i % rank] - 2) for i, p in enumerate(pads)]
        value = np.array(rng.standard_normal() * 10).astype(x.dtype)
        y = pad_ref(x, pads, mode, value)
        save_case(f"ext_pad_{mode}_{case}", "Pad",
                  [("x", x), ("pads", i64(*pads)), ("value", value if mode == "constant" else None)],
                  [("y", y)], attrs=dict(mode=mode), opset=19 if mode == "wrap" else 13)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    save_case("ext_pad_v2_attr", "Pad", [("x", x)],
              [("y", pad_ref(x, [0, 0, 1, -1, 0, 1, 2, 2], "constant", 1.5))],
              attrs=dict(pads=[0, 0, 1, -1, 0, 1, 2, 2], value=1.5), opset=2)
    save_case("ext_pad_axes18", "Pad",
              [("x", x), ("pads", i64(2, -1, 1, 3)), ("value", None), ("axes", i64(-1, 1))],
              [("y", pad_ref(x, [0, -1, 0, 2, 0, 3, 0, 1], "edge", 0))], attrs=dict(mode="edge"),
              opset=18)
    x = rng.standard_normal((1, 3, 6)).astype(np.float32)
    save_case("ext_pad_reflect_large", "Pad", [("x", x), ("pads", i64(0, 0, 9, 0, 0, 7))],
              [("y", np.pad(x, [(0, 0), (0, 0), (9, 7)], mode="reflect"))],
              attrs=dict(mode="reflect"))


# ---- Tile / Expand / Split / Concat / Reshape / Squeeze / Unsqueeze ---------------------------

def gen_misc():
    x = rng.standard_normal((2, 1, 3)).astype(np.float16)
    save_case("ext_tile_f16", "Tile", [("x", x), ("r", i64(2, 3, 1))], [("y", np.tile(x, (2, 3, 1)))])
    save_case("ext_tile_zero", "Tile", [("x", x), ("r", i64(2, 0, 1))], [("y", np.tile(x, (2, 0, 1)))])
    x = rng.integers(0, 100, (3, 1, 1)).astype(np.int64)
    save_case("ext_expand_rank_up", "Expand", [("x", x), ("s", i64(2, 1, 4, 5))],
              [("y", x * np.ones((2, 1, 4, 5), np.int64))])
    save_case("ext_expand_zero", "Expand", [("x", x), ("s", i64(3, 0, 1))],
              [("y", np.broadcast_to(x, (3, 0, 1)).copy())])
    x = rng.standard_normal((11, 3)).astype(np.float32)
    save_case("ext_split_num_outputs_uneven", "Split", [("x", x)],
              [("a", x[0:3]), ("b", x[3:6]), ("c", x[6:9]), ("d", x[9:11])],
              attrs=dict(axis=0, num_outputs=4), opset=18)
    save_case("ext_split_v11_attr", "Split", [("x", x)],
              [("a", x[:, 0:1]), ("b", x[:, 1:3])], attrs=dict(axis=-1, split=[1, 2]), opset=11)
    a, b = np.zeros((2, 0, 3), np.float32), rng.standard_normal((2, 4, 3)).astype(np.float32)
    save_case("ext_concat_empty_part", "Concat", [("a", a), ("b", b)],
              [("y", np.concatenate([a, b], 1))], attrs=dict(axis=1))
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    save_case("ext_reshape_allowzero_empty", "Reshape", [("x", np.zeros((0, 3), np.float32)),
                                                          ("s", i64(3, 0))],
              [("y", np.zeros((3, 0), np.float32))], attrs=dict(allowzero=1), opset=14)
    save_case("ext_reshape_zero_copy_neg", "Reshape", [("x", x), ("s", i64(0, -1))],
              [("y", x.reshape(2, 12))])
    save_case("ext_reshape_v1_attr", "Reshape", [("x", x)], [("y", x.reshape(4, 6))],
              attrs=dict(shape=[4, -1]), opset=1)
    x = rng.standard_normal((1, 3, 1, 2)).astype(np.float32)
    save_case("ext_squeeze_all", "Squeeze", [("x", x)], [("y", x.reshape(3, 2))])
    save_case("ext_squeeze_v11_attr", "Squeeze", [("x", x)], [("y", x.reshape(1, 3, 2))],
              attrs=dict(axes=[-2]), opset=11)
    save_case("ext_unsqueeze_v11_attr", "Unsqueeze", [("x", x)], [("y", x.reshape(1, 3, 1, 2, 1, 1))],
              attrs=dict(axes=[-1, 4]), opset=11)
    x = rng.standard_normal((2, 8, 3, 5)).astype(np.float32)
    b = 2
    n, c, h, w = x.shape
    y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // 4, h * b, w * b)
    save_case("ext_depthtospace_crd", "DepthToSpace", [("x", x)], [("y", y)],
              attrs=dict(blocksize=2, mode="CRD"))
    y = x.reshape(n, b, b, c // 4, h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c // 4, h * b, w * b)
    save_case("ext_depthtospace_dcr", "DepthToSpace", [("x", x)], [("y", y)], attrs=dict(blocksize=2))
    x = rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    y = x.reshape(2, 3, 2, 2, 3, 2).transpose(0, 3, 5, 1, 2, 4).reshape(2, 12, 2, 3)
    save_case("ext_spacetodepth", "SpaceToDepth", [("x", x)], [("y", y)], attrs=dict(blocksize=2))
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float64)
    save_case("ext_trilu_batched_upper", "Trilu", [("x", x), ("k", i64(-1))],
              [("y", np.triu(x, -1))], opset=14)
    save_case("ext_trilu_huge_k", "Trilu", [("x", x), ("k", np.array(INT64_MIN, np.int64))],
              [("y", np.tril(x, -100))], attrs=dict(upper=0), opset=14)
    save_case("ext_range_int64_neg", "Range",
              [("s", np.array(10, np.int64)), ("l", np.array(-7, np.int64)),
               ("d", np.array(-3, np.int64))], [("y", np.arange(10, -7, -3, dtype=np.int64))],
              opset=11)
    save_case("ext_range_empty", "Range",
              [("s", np.array(1.0, np.float32)), ("l", np.array(0.0, np.float32)),
               ("d", np.array(0.5, np.float32))], [("y", np.zeros(0, np.float32))], opset=11)
    x = rng.standard_normal((3, 2, 5)).astype(np.float32)
    save_case("ext_shape_slice", "Shape", [("x", x)], [("y", i64(2))], attrs=dict(start=-2, end=-1),
              opset=15)
    save_case("ext_shape_empty_range", "Shape", [("x", x)], [("y", np.zeros(0, np.int64))],
              attrs=dict(start=2, end=1), opset=15)
    save_case("ext_eyelike_k_neg_int", "EyeLike", [("x", np.zeros((4, 3), np.int32))],
              [("y", np.eye(4, 3, k=-2, dtype=np.int32))], attrs=dict(k=-2), opset=9)
    save_case("ext_eyelike_bool", "EyeLike", [("x", np.zeros((3, 5), np.float32))],
              [("y", np.eye(3, 5, k=3, dtype=np.bool_))], attrs=dict(k=3, dtype=TensorProto.BOOL),
              opset=9)
    save_case("ext_constantofshape_scalar", "ConstantOfShape", [("s", np.zeros(0, np.int64))],
              [("y", np.array(7, np.int32))],
              attrs=dict(value=numpy_helper.from_array(np.array([7], np.int32))), opset=9)


# ---- Cast ---------------------------------------------------------------------------------------

def gen_cast():
    types = [np.float32, np.float64, np.float16, np.int8, np.uint8, np.int16, np.uint16,
             np.int32, np.uint32, np.int64, np.uint64, np.bool_]
    base = np.array([0.0, -0.0, 1.0, 2.5, -3.75, 100.0, 7.0, 0.4, 126.0, -1.0, 65.5, 12.0])
    for src in types:
        for dst in types:
            v = base
            if src in (np.uint8, np.uint16, np.uint32, np.uint64) or \
               dst in (np.uint8, np.uint16, np.uint32, np.uint64):
                v = np.abs(base)
            x = v.astype(src).reshape(3, 4)
            y = x.astype(dst)
            save_case(f"ext_cast_{np.dtype(src).name}_to_{np.dtype(dst).name}", "Cast",
                      [("x", x)], [("y", y)],
                      attrs=dict(to=np_to_onnx(np.dtype(dst))))
    x = np.array([np.nan, np.inf, -np.inf, 1e-8, 65504.0, 70000.0, 6e-5, -2e-7], np.float64)
    save_case("ext_cast_double_to_half_special", "Cast", [("x", x)],
              [("y", x.astype(np.float16))], attrs=dict(to=TensorProto.FLOAT16))
    x = np.array([np.nan, 0.0, -0.0, 0.5], np.float32)
    save_case("ext_cast_float_to_bool_nan", "Cast", [("x", x)], [("y", x.astype(np.bool_))],
              attrs=dict(to=TensorProto.BOOL))


# ---- Resize -------------------------------------------------------------------------------------

def resize_ref(x, out, scales, coord, mode, nearest="round_prefer_floor", a=-0.75,
               exclude=False, extrap=0.0, roi=None):
    """Spec formulas in float64, one 1-D interpolation per axis (separable)."""
    y = x.astype(np.float64)
    for ax in range(x.ndim):
        n_in, n_out, s = y.shape[ax], out[ax], scales[ax]
        res = np.zeros(y.shape[:ax] + (n_out,) + y.shape[ax + 1:])
        for o in range(n_out):
            length = s * n_in
            if coord == "half_pixel":
                xo = (o + 0.5) / s - 0.5
            elif coord == "pytorch_half_pixel":
                xo = (o + 0.5) / s - 0.5 if n_out > 1 else 0.0
            elif coord == "align_corners":
                xo = 0.0 if length == 1 else o * (n_in - 1) / (length - 1)
            elif coord == "asymmetric":
                xo = o / s
            elif coord == "tf_crop_and_resize":
                r0, r1 = roi[ax], roi[x.ndim + ax]
                xo = (o * (r1 - r0) * (n_in - 1) / (length - 1) if length != 1
                      else (r1 - r0) * (n_in - 1) / 2) + r0 * (n_in - 1)
            sl = [slice(None)] * y.ndim
            sl[ax] = o
            if coord == "tf_crop_and_resize" and (xo < 0 or xo > n_in - 1):
                res[tuple(sl)] = extrap
                continue
            f = np.floor(xo)
            t = xo - f
            if mode == "nearest":
                if t == 0:
                    i = f
                elif nearest == "round_prefer_floor":
                    i = f if t <= 0.5 else f + 1
                elif nearest == "round_prefer_ceil":
                    i = f if t < 0.5 else f + 1
                elif nearest == "floor":
                    i = f
                else:
                    i = f + 1
                taps, w = [int(i)], [1.0]
            elif mode == "linear":
                taps, w = [int(f), int(f) + 1], [1 - t, t]
            else:
                def c(d):
                    d = abs(d)
                    if d <= 1:
                        return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
                    if d < 2:
                        return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a
                    return 0.0
                taps = [int(f) - 1 + k for k in range(4)]
                w = [c(k - 1 - t) for k in range(4)]
            if exclude:
                w = [wk if 0 <= i < n_in else 0.0 for wk, i in zip(w, taps)]
                sw = sum(w)
                w = [wk / sw for wk in w]
            acc = 0
            for i, wk in zip(taps, w):
                src = [slice(None)] * y.ndim
                src[ax] = min(max(i, 0), n_in - 1)
                acc = acc + wk * y[tuple(src)]
            res[tuple(sl)] = acc
        y = res
    return y.astype(x.dtype)


def gen_resize():
    import torch
    import torch.nn.functional as F
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    xt = torch.from_numpy(x)
    empty = np.zeros(0, np.float32)
    for size in [(14, 18), (5, 4), (7, 20), (1, 1), (3, 9)]:
        sizes = i64(2, 3, *size)
        for mode, tmode in [("linear", "bilinear"), ("cubic", "bicubic")]:
            y = F.interpolate(xt, size=size, mode=tmode, align_corners=False).numpy()
            if size[0] > 1 and size[1] > 1:  # the spec maps a 1-long output to 0, torch to the centre
                save_case(f"ext_resize_{mode}_pytorch_half_pixel_{size[0]}x{size[1]}", "Resize",
                          [("x", x), ("roi", None), ("scales", None), ("sizes", sizes)],
                          [("y", y)],
                          attrs=dict(mode=mode, coordinate_transformation_mode="pytorch_half_pixel"))
            y = F.interpolate(xt, size=size, mode=tmode, align_corners=True).numpy()
            save_case(f"ext_resize_{mode}_align_corners_{size[0]}x{size[1]}", "Resize",
                      [("x", x), ("roi", None), ("scales", None), ("sizes", sizes)], [("y", y)],
                      attrs=dict(mode=mode, coordinate_transformation_mode="align_corners"))
            if 1 < size[0] < 7 and size[1] <= 9:
                y = F.interpolate(xt, size=size, mode=tmode, antialias=True,
                                  align_corners=False).numpy()
                save_case(f"ext_resize_{mode}_antialias_{size[0]}x{size[1]}", "Resize",
                          [("x", x), ("roi", None), ("scales", None), ("sizes", sizes)],
                          [("y", y)],
                          attrs=dict(mode=mode, antialias=1, exclude_outside=1, cubic_coeff_a=-0.5,
                                     coordinate_transformation_mode="pytorch_half_pixel"),
                          opset=18)
        y = F.interpolate(xt, size=size, mode="nearest").numpy()
        save_case(f"ext_resize_nearest_torch_{size[0]}x{size[1]}", "Resize",
                  [("x", x), ("roi", None), ("scales", None), ("sizes", sizes)], [("y", y)],
                  attrs=dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                             nearest_mode="floor"))
    for sc in [(2.0, 2.0), (0.5, 0.75), (1.5, 2.25)]:
        scales = np.array([1, 1, *sc], np.float32)
        out = [int(np.floor(d * s)) for d, s in zip(x.shape, scales.astype(np.float64))]
        y = F.interpolate(xt, scale_factor=sc, mode="bilinear", align_corners=False,
                          recompute_scale_factor=False).numpy()
        save_case(f"ext_resize_linear_scales_{sc[0]}_{sc[1]}", "Resize",
                  [("x", x), ("roi", empty), ("scales", scales)], [("y", y)],
                  attrs=dict(mode="linear"), opset=11)
        for coord in ["half_pixel", "asymmetric", "align_corners"]:
            for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
                y = resize_ref(x, out, scales.astype(np.float64), coord, "nearest", nm)
                save_case(f"ext_resize_nearest_{coord}_{nm}_{sc[0]}_{sc[1]}", "Resize",
                          [("x", x), ("roi", None), ("scales", scales)], [("y", y)],
                          attrs=dict(mode="nearest", coordinate_transformation_mode=coord,
                                     nearest_mode=nm))
            y = resize_ref(x, out, scales.astype(np.float64), coord, "cubic", exclude=True, a=-0.5)
            save_case(f"ext_resize_cubic_excl_{coord}_{sc[0]}_{sc[1]}", "Resize",
                      [("x", x), ("roi", None), ("scales", scales)], [("y", y)],
                      attrs=dict(mode="cubic", coordinate_transformation_mode=coord,
                                 exclude_outside=1, cubic_coeff_a=-0.5))
    roi = np.array([0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3], np.float32)
    for mode in ["nearest", "linear", "cubic"]:
        out = [2, 3, 5, 6]
        y = resize_ref(x, out, [o / d for o, d in zip(out, x.shape)], "tf_crop_and_resize", mode,
                       extrap=-3.0, roi=roi.astype(np.float64))
        save_case(f"ext_resize_tf_crop_{mode}", "Resize",
                  [("x", x), ("roi", roi), ("scales", None), ("sizes", i64(*out))], [("y", y)],
                  attrs=dict(mode=mode, coordinate_transformation_mode="tf_crop_and_resize",
                             extrapolation_value=-3.0))
    # opset 18 axes + keep_aspect_ratio_policy
    y = F.interpolate(xt, size=(7, 9), mode="bilinear", align_corners=False).numpy()
    save_case("ext_resize_axes_not_larger", "Resize",
              [("x", x), ("roi", None), ("scales", None), ("sizes", i64(20, 9))], [("y", y)],
              attrs=dict(mode="linear", axes=[2, 3], keep_aspect_ratio_policy="not_larger"),
              opset=18)
    xi = rng.integers(-100, 100, (1, 2, 3, 4)).astype(np.int32)
    y = np.repeat(np.repeat(xi, 2, axis=2), 3, axis=3)
    save_case("ext_resize_nearest_int32", "Resize",
              [("x", xi), ("roi", None), ("scales", np.array([1, 1, 2, 3], np.float32))],
              [("y", y)], attrs=dict(mode="nearest"))
    # Upsample-7 (attribute) and Resize-10, nearest and linear (asymmetric)
    y = np.repeat(np.repeat(x, 2, axis=2), 3, axis=3)
    save_case("ext_upsample7_nearest", "Upsample", [("x", x)], [("y", y)],
              attrs=dict(mode="nearest", scales=[1.0, 1.0, 2.0, 3.0]), opset=7)
    scales = np.array([1, 1, 2, 1.5], np.float32)
    out = [2, 3, 14, 13]
    y = resize_ref(x, out, scales.astype(np.float64), "asymmetric", "linear")
    save_case("ext_resize10_linear", "Resize", [("x", x), ("scales", scales)], [("y", y)],
              attrs=dict(mode="linear"), opset=10)
    save_case("ext_upsample9_linear", "Upsample", [("x", x), ("scales", scales)], [("y", y)],
              attrs=dict(mode="linear"), opset=9)


def gen_large():
    """Big enough to take the multi-threaded paths (run with --threads 2 or more)."""
    import torch
    import torch.nn.functional as F
    x = rng.standard_normal((8, 130, 257)).astype(np.float32)
    save_case("ext_large_transpose_021", "Transpose", [("x", x)],
              [("y", np.transpose(x, (0, 2, 1)))], attrs=dict(perm=[0, 2, 1]))
    save_case("ext_large_transpose_102", "Transpose", [("x", x)],
              [("y", np.transpose(x, (1, 0, 2)))], attrs=dict(perm=[1, 0, 2]))
    x16 = x.astype(np.float16)
    save_case("ext_large_transpose_f16_210", "Transpose", [("x", x16)],
              [("y", np.transpose(x16, (2, 1, 0)))], attrs=dict(perm=[2, 1, 0]))
    save_case("ext_large_concat", "Concat", [("a", x), ("b", x[:, :7])],
              [("y", np.concatenate([x, x[:, :7]], 1))], attrs=dict(axis=1))
    save_case("ext_large_slice", "Slice",
              [("x", x), ("s", i64(-1, 3)), ("e", i64(INT64_MIN, 250)), ("a", i64(1, 2)),
               ("st", i64(-2, 3))], [("y", x[::1, -1::-2, 3:250:3])])
    save_case("ext_large_pad_reflect", "Pad", [("x", x), ("p", i64(0, 2, 3, 0, 1, 4))],
              [("y", np.pad(x, [(0, 0), (2, 1), (3, 4)], mode="reflect"))],
              attrs=dict(mode="reflect"))
    save_case("ext_large_split", "Split", [("x", x), ("s", i64(100, 157))],
              [("a", x[:, :, :100]), ("b", x[:, :, 100:])], attrs=dict(axis=2))
    save_case("ext_large_tile", "Tile", [("x", x[:2]), ("r", i64(3, 1, 2))],
              [("y", np.tile(x[:2], (3, 1, 2)))])
    save_case("ext_large_cast", "Cast", [("x", x)], [("y", x.astype(np.float16))],
              attrs=dict(to=TensorProto.FLOAT16))
    img = rng.standard_normal((1, 16, 64, 80)).astype(np.float32)
    t = torch.from_numpy(img)
    y = F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False,
                      recompute_scale_factor=False).numpy()
    save_case("ext_large_resize_linear", "Resize",
              [("x", img), ("roi", None), ("scales", np.array([1, 1, 2, 2], np.float32))],
              [("y", y)], attrs=dict(mode="linear"))
    y = F.interpolate(t, scale_factor=2.0, mode="nearest").numpy()
    save_case("ext_large_resize_nearest", "Resize",
              [("x", img), ("roi", None), ("scales", np.array([1, 1, 2, 2], np.float32))],
              [("y", y)], attrs=dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                     nearest_mode="floor"))
    y = F.interpolate(t, size=(30, 50), mode="bicubic", align_corners=False).numpy()
    save_case("ext_large_resize_cubic_down", "Resize",
              [("x", img), ("roi", None), ("scales", None), ("sizes", i64(1, 16, 30, 50))],
              [("y", y)], attrs=dict(mode="cubic", coordinate_transformation_mode="pytorch_half_pixel"))


if __name__ == "__main__":
    gen_slice()
    gen_transpose()
    gen_pad()
    gen_misc()
    gen_cast()
    gen_resize()
    gen_large()
    print("cases written to", OUT)
