#!/usr/bin/python3
"""Extra backend-format cases for the quantization and detection kernels (ops/quant.c,
ops/detection.c), beyond the ONNX node tests.

Expected outputs come from PyTorch / torchvision where they define the same operation
(grid_sample, roi_align with avg, roi_pool, fold) and otherwise from short transcriptions of
the ONNX spec / reference formulas in numpy (QuantizeLinear, DequantizeLinear, NMS, RoiAlign
max mode, bicubic GridSample with border / reflection outside the image, where PyTorch
differs from the ONNX reference).

    /usr/bin/python3 tests/extra/gen_detect_cases.py OUTDIR
    build/tools/ember test OUTDIR

(they pass at the default tolerances, rtol 1e-3 / atol 1e-7).
"""
import os
import sys

import numpy as np
import torch
import torchvision
from onnx import helper, numpy_helper
from onnx.mapping import NP_TYPE_TO_TENSOR_TYPE

rng = np.random.default_rng(4321)
OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ember-detect-cases"


def save_case(name, op, inputs, outputs, attrs=None, opset=16):
    """inputs: list of (name, array or None); None = omitted optional input ('')."""
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    node = helper.make_node(op, [n if a is not None else "" for n, a in inputs],
                            [n for n, _ in outputs], **(attrs or {}))
    g_in = [helper.make_tensor_value_info(n, NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape)
            for n, a in inputs if a is not None]
    g_out = [helper.make_tensor_value_info(n, NP_TYPE_TO_TENSOR_TYPE[a.dtype], None)
             for n, a in outputs]
    graph = helper.make_graph([node], name, g_in, g_out)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    k = 0
    for n, a in inputs:
        if a is None:
            continue
        with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
        k += 1
    for k, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())


# ---- QuantizeLinear / DequantizeLinear ----------------------------------------------------------

QRANGE = {np.uint8: (0, 255), np.int8: (-128, 127), np.uint16: (0, 65535),
          np.int16: (-32768, 32767)}


def expand_scale(x_shape, s, axis, block):
    """Broadcast a scale (per-tensor, per-axis or blocked) to x's shape."""
    if s.size == 1 and block == 0:
        return np.full(x_shape, s.reshape(()))
    if block == 0:
        shape = [1] * len(x_shape)
        shape[axis] = -1
        return np.broadcast_to(s.reshape(shape), x_shape)
    return np.repeat(s, block, axis=axis).take(range(x_shape[axis]), axis=axis)


def quant_ref(x, s, zp, qt, axis=1, block=0):
    lo, hi = QRANGE[qt]
    sf = expand_scale(x.shape, s.astype(np.float32), axis, block)
    zf = expand_scale(x.shape, zp.astype(np.float32), axis, block)
    if x.dtype == np.int32:
        v = np.rint(x.astype(np.float64) / sf.astype(np.float64)) + zf
    else:
        v = np.rint(x.astype(np.float32) / sf) + zf
    return np.clip(v, lo, hi).astype(qt)


def dequant_ref(x, s, zp, axis=1, block=0):
    sf = expand_scale(x.shape, s.astype(np.float32), axis, block)
    zf = expand_scale(x.shape, zp.astype(np.int64), axis, block)
    return ((x.astype(np.int64) - zf).astype(np.float32) * sf).astype(s.dtype)


def gen_quant():
    # ties and saturation, per tensor
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 254.5, 255.5, 1e10, -1e10, np.inf, -np.inf,
                  3.4999998, 127.5, -128.5], np.float32)
    for qt in (np.uint8, np.int8):
        zp = np.array(0, qt)
        save_case(f"ext_quantizelinear_ties_{qt.__name__}", "QuantizeLinear",
                  [("x", x), ("s", np.array(1, np.float32)), ("zp", zp)],
                  [("y", quant_ref(x, np.float32(1), zp, qt))], opset=13)
    save_case("ext_quantizelinear_no_zp", "QuantizeLinear",
              [("x", x * 7), ("s", np.array(0.75, np.float32))],
              [("y", quant_ref(x * 7, np.float32(0.75), np.uint8(0), np.uint8))], opset=10)
    # per axis, several axes and ranks, both types; long tensors cross the parallel split
    for case, (shape, axis, qt) in enumerate([((2, 3, 4, 5), 1, np.uint8),
                                              ((2, 3, 4, 5), -1, np.int8),
                                              ((7, 3), 0, np.int8),
                                              ((3, 4, 1000), 2, np.uint8),
                                              ((3, 50000), 0, np.int8)]):
        x = (rng.standard_normal(shape) * 50).astype(np.float32)
        s = rng.uniform(0.1, 2, shape[axis]).astype(np.float32)
        lo, hi = QRANGE[qt]
        zp = rng.integers(lo, hi + 1, shape[axis]).astype(qt)
        save_case(f"ext_quantizelinear_axis_{case}", "QuantizeLinear",
                  [("x", x), ("s", s), ("zp", zp)],
                  [("y", quant_ref(x, s, zp, qt, axis % len(shape)))], attrs=dict(axis=axis),
                  opset=13)
        xq = rng.integers(lo, hi + 1, shape).astype(qt)
        save_case(f"ext_dequantizelinear_axis_{case}", "DequantizeLinear",
                  [("x", xq), ("s", s), ("zp", zp)],
                  [("y", dequant_ref(xq, s, zp, axis % len(shape)))], attrs=dict(axis=axis),
                  opset=13)
    # int32 input
    xi = rng.integers(-2**31, 2**31 - 1, 64, dtype=np.int64).astype(np.int32)
    save_case("ext_quantizelinear_int32", "QuantizeLinear",
              [("x", xi), ("s", np.array(2**24, np.float32)), ("zp", np.array(3, np.int8))],
              [("y", quant_ref(xi, np.float32(2**24), np.int8(3), np.int8))], opset=13)
    save_case("ext_dequantizelinear_int32", "DequantizeLinear",
              [("x", xi), ("s", np.array(0.001, np.float32))],
              [("y", dequant_ref(xi, np.float32(0.001), np.int32(0)))], opset=13)
    # opset 19: float16 input and scale
    xh = (rng.standard_normal((4, 6)) * 10).astype(np.float16)
    sh = np.array([0.5, 0.25, 1, 2], np.float16)
    zh = np.array([1, -3, 0, 7], np.int8)
    save_case("ext_quantizelinear_f16", "QuantizeLinear", [("x", xh), ("s", sh), ("zp", zh)],
              [("y", quant_ref(xh, sh, zh, np.int8, 0))], attrs=dict(axis=0), opset=19)
    xq = rng.integers(-128, 128, (4, 6)).astype(np.int8)
    save_case("ext_dequantizelinear_f16", "DequantizeLinear", [("x", xq), ("s", sh), ("zp", zh)],
              [("y", dequant_ref(xq, sh, zh, 0))], attrs=dict(axis=0), opset=19)
    # opset 21: blocked, 16-bit types
    for case, (shape, axis, block, qt) in enumerate([((6, 10), 1, 4, np.int8),
                                                     ((6, 10), 0, 2, np.uint16),
                                                     ((3, 7, 5), 1, 3, np.int16),
                                                     ((4, 64), 1, 32, np.uint8)]):
        x = (rng.standard_normal(shape) * 100).astype(np.float32)
        sshape = list(shape)
        sshape[axis] = -(-shape[axis] // block)
        s = rng.uniform(0.05, 1, sshape).astype(np.float32)
        lo, hi = QRANGE[qt]
        zp = rng.integers(lo // 2, hi // 2 + 1, sshape).astype(qt)
        save_case(f"ext_quantizelinear_blocked_{case}", "QuantizeLinear",
                  [("x", x), ("s", s), ("zp", zp)],
                  [("y", quant_ref(x, s, zp, qt, axis, block))],
                  attrs=dict(axis=axis, block_size=block), opset=21)
        xq = rng.integers(lo, hi + 1, shape).astype(qt)
        save_case(f"ext_dequantizelinear_blocked_{case}", "DequantizeLinear",
                  [("x", xq), ("s", s), ("zp", zp)],
                  [("y", dequant_ref(xq, s, zp, axis, block))],
                  attrs=dict(axis=axis, block_size=block), opset=21)
    # DynamicQuantizeLinear on a long tensor
    x = (rng.standard_normal(100003) * 3 + 1).astype(np.float32)
    mn, mx = np.float32(min(0, x.min())), np.float32(max(0, x.max()))
    scale = (mx - mn) / np.float32(255)
    zp = np.rint(np.clip(np.float32(0) - mn / scale, 0, 255))
    y = np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.uint8)
    save_case("ext_dynamicquantizelinear_long", "DynamicQuantizeLinear", [("x", x)],
              [("y", y), ("s", np.array(scale, np.float32)), ("zp", np.array(zp, np.uint8))],
              opset=11)


# ---- NonMaxSuppression -------------------------------------------------------------------------

def nms_ref(boxes, scores, max_out, iou_thr, score_thr, center):
    out = []
    for b in range(boxes.shape[0]):
        bx = boxes[b].astype(np.float32)
        if center:
            x0, x1 = bx[:, 0] - bx[:, 2] / 2, bx[:, 0] + bx[:, 2] / 2
            y0, y1 = bx[:, 1] - bx[:, 3] / 2, bx[:, 1] + bx[:, 3] / 2
        else:
            y0, y1 = np.minimum(bx[:, 0], bx[:, 2]), np.maximum(bx[:, 0], bx[:, 2])
            x0, x1 = np.minimum(bx[:, 1], bx[:, 3]), np.maximum(bx[:, 1], bx[:, 3])
        area = (x1 - x0) * (y1 - y0)
        for c in range(scores.shape[1]):
            sc = scores[b, c]
            cand = [i for i in range(len(sc)) if score_thr is None or sc[i] > score_thr]
            cand.sort(key=lambda i: (-sc[i], i))
            kept = []
            for i in cand:
                if len(kept) >= max_out:
                    break
                ok = True
                for j in kept:
                    iw = min(x1[i], x1[j]) - max(x0[i], x0[j])
                    ih = min(y1[i], y1[j]) - max(y0[i], y0[j])
                    if iw <= 0 or ih <= 0:
                        continue
                    inter = np.float32(iw * ih)
                    union = area[i] + area[j] - inter
                    if area[i] <= 0 or area[j] <= 0 or union <= 0:
                        continue
                    if inter / union > iou_thr:
                        ok = False
                        break
                if ok:
                    kept.append(i)
                    out.append([b, c, i])
    return np.array(out, np.int64).reshape(-1, 3)


def gen_nms():
    for case in range(12):
        nb, nc, n = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(0, 60))
        center = case % 2
        xy = rng.uniform(0, 10, (nb, n, 2))
        wh = rng.uniform(0.5, 4, (nb, n, 2))
        if center:
            boxes = np.concatenate([xy, wh], axis=2)
        else:  # [y1, x1, y2, x2], corners in either order
            p = np.concatenate([xy[..., ::-1], xy[..., ::-1] + wh], axis=2)
            flip = rng.random((nb, n)) < 0.3
            p[flip] = p[flip][:, [2, 3, 0, 1]]
            boxes = p
        boxes = boxes.astype(np.float32)
        scores = np.round(rng.random((nb, nc, n)), 1).astype(np.float32)  # many ties
        max_out = [0, 1, 3, 10, 1000][case % 5]
        iou = float(rng.choice([0.0, 0.3, 0.5, 0.9]))
        sthr = None if case % 3 == 0 else float(rng.choice([0.0, 0.35, 0.8]))
        y = nms_ref(boxes, scores, max_out, iou, sthr, center)
        inputs = [("boxes", boxes), ("scores", scores), ("max", np.array([max_out], np.int64)),
                  ("iou", np.array([iou], np.float32)),
                  ("sthr", None if sthr is None else np.array([sthr], np.float32))]
        save_case(f"ext_nonmaxsuppression_{case}", "NonMaxSuppression", inputs,
                  [("selected", y)], attrs=dict(center_point_box=center), opset=11)


# ---- RoiAlign, MaxRoiPool ---------------------------------------------------------------------

def roi_align_max_ref(x, rois, bidx, oh, ow, sr, scale, half_pixel):
    """Transcription of the ONNX reference's max mode (max of weighted corners)."""
    n_r, c = rois.shape[0], x.shape[1]
    h, w = x.shape[2], x.shape[3]
    y = np.zeros((n_r, c, oh, ow), np.float64)
    for r in range(n_r):
        off = 0.5 if half_pixel else 0.0
        x1, y1, x2, y2 = [float(v) * scale - off for v in rois[r]]
        rw, rh = x2 - x1, y2 - y1
        if not half_pixel:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = sr if sr > 0 else int(np.ceil(rh / oh))
        gw = sr if sr > 0 else int(np.ceil(rw / ow))
        for ph in range(oh):
            for pw in range(ow):
                best = None
                for iy in range(gh):
                    yy = y1 + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        xx = x1 + pw * bw + (ix + 0.5) * bw / gw
                        if yy < -1.0 or yy > h or xx < -1.0 or xx > w:
                            v = np.zeros(c)
                        else:
                            yv, xv = max(yy, 0), max(xx, 0)
                            yl, xl = int(yv), int(xv)
                            if yl >= h - 1:
                                yl = yh = h - 1
                                yv = yl
                            else:
                                yh = yl + 1
                            if xl >= w - 1:
                                xl = xh = w - 1
                                xv = xl
                            else:
                                xh = xl + 1
                            ly, lx = yv - yl, xv - xl
                            img = x[bidx[r]].astype(np.float64)
                            v = np.maximum.reduce([(1 - ly) * (1 - lx) * img[:, yl, xl],
                                                   (1 - ly) * lx * img[:, yl, xh],
                                                   ly * (1 - lx) * img[:, yh, xl],
                                                   ly * lx * img[:, yh, xh]])
                        best = v if best is None else np.maximum(best, v)
                if best is not None:
                    y[r, :, ph, pw] = best
    return y.astype(x.dtype)


def gen_roi():
    for case in range(8):
        n, c, h, w = 2, int(rng.integers(1, 20)), int(rng.integers(3, 12)), int(rng.integers(3, 12))
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        nr = int(rng.integers(1, 6))
        scale = float(rng.choice([1.0, 0.5, 0.25]))
        p = rng.uniform(-4, max(h, w) / scale + 4, (nr, 2, 2))
        rois = np.concatenate([p.min(axis=1), p.max(axis=1)], axis=1).astype(np.float32)
        if case == 3:
            rois[0, 2:] = rois[0, :2]  # degenerate roi
        bidx = rng.integers(0, n, nr).astype(np.int64)
        oh, ow = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sr = int(rng.choice([0, 1, 2, 3]))
        aligned = bool(case % 2)
        t_rois = torch.from_numpy(np.concatenate([bidx[:, None].astype(np.float32), rois], 1))
        y = torchvision.ops.roi_align(torch.from_numpy(x), t_rois, (oh, ow), scale, sr,
                                      aligned).numpy()
        attrs = dict(output_height=oh, output_width=ow, sampling_ratio=sr, spatial_scale=scale,
                     coordinate_transformation_mode="half_pixel" if aligned else
                     "output_half_pixel")
        save_case(f"ext_roialign_avg_{case}", "RoiAlign",
                  [("x", x), ("rois", rois), ("bi", bidx)], [("y", y)], attrs=attrs)
        ym = roi_align_max_ref(x, rois, bidx, oh, ow, sr, scale, aligned)
        save_case(f"ext_roialign_max_{case}", "RoiAlign",
                  [("x", x), ("rois", rois), ("bi", bidx)], [("y", ym)],
                  attrs=dict(attrs, mode="max"))
        if not aligned:  # opset 10 has no coordinate_transformation_mode: output_half_pixel
            del attrs["coordinate_transformation_mode"]
            save_case(f"ext_roialign_v10_{case}", "RoiAlign",
                      [("x", x), ("rois", rois), ("bi", bidx)], [("y", y)], attrs=attrs,
                      opset=10)
        # MaxRoiPool: torchvision's roi_pool is the same Caffe definition
        t_rois = torch.from_numpy(np.concatenate([bidx[:, None].astype(np.float32), rois], 1))
        yp = torchvision.ops.roi_pool(torch.from_numpy(x), t_rois, (oh, ow), scale).numpy()
        save_case(f"ext_maxroipool_{case}", "MaxRoiPool", [("x", x), ("rois", t_rois.numpy())],
                  [("y", yp)], attrs=dict(pooled_shape=[oh, ow], spatial_scale=scale), opset=1)


# ---- GridSample ---------------------------------------------------------------------------------

def gen_gridsample():
    case = 0
    for mode in ("bilinear", "nearest", "bicubic"):
        for pad in ("zeros", "border", "reflection"):
            for align in (0, 1):
                n, c, h, w = 2, 3, int(rng.integers(1, 7)), int(rng.integers(2, 7))
                x = rng.standard_normal((n, c, h, w)).astype(np.float32)
                # PyTorch clips / reflects the bicubic coordinate per tap while the ONNX
                # reference moves the point first: they agree inside the image only.
                span = 0.95 if mode == "bicubic" and pad != "zeros" else 2.5
                grid = rng.uniform(-span, span, (n, 5, 4, 2)).astype(np.float32)
                if mode == "nearest":  # exact halves: round half to even
                    grid[0, 0, :, 0] = (np.arange(4) * 2 + 1 - w) / w if not align else \
                        (np.arange(4) + 0.5) * 2 / max(w - 1, 1) - 1
                y = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(grid),
                                                    mode=mode, padding_mode=pad,
                                                    align_corners=bool(align)).numpy()
                save_case(f"ext_gridsample_{mode}_{pad}_{align}", "GridSample",
                          [("x", x), ("grid", grid)], [("y", y)],
                          attrs=dict(mode=mode, padding_mode=pad, align_corners=align))
                case += 1
    # opset 20: 3-D (volumetric) linear and nearest, and the new mode names in 2-D
    for mode, tmode in (("linear", "bilinear"), ("nearest", "nearest")):
        for pad in ("zeros", "border", "reflection"):
            x = rng.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
            grid = rng.uniform(-1.6, 1.6, (1, 2, 3, 4, 3)).astype(np.float32)
            y = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(grid),
                                                mode=tmode, padding_mode=pad,
                                                align_corners=False).numpy()
            save_case(f"ext_gridsample_3d_{mode}_{pad}", "GridSample",
                      [("x", x), ("grid", grid)], [("y", y)],
                      attrs=dict(mode=mode, padding_mode=pad), opset=20)
    x = rng.standard_normal((1, 2, 6, 7)).astype(np.float32)
    grid = rng.uniform(-1.3, 1.3, (1, 3, 3, 2)).astype(np.float32)
    y = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(grid),
                                        mode="bicubic", padding_mode="zeros",
                                        align_corners=True).numpy()
    save_case("ext_gridsample_v20_cubic", "GridSample", [("x", x), ("grid", grid)], [("y", y)],
              attrs=dict(mode="cubic", align_corners=1), opset=20)
    # float64 data
    x = rng.standard_normal((1, 2, 5, 5))
    grid = rng.uniform(-1.2, 1.2, (1, 3, 3, 2))
    y = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(grid),
                                        mode="bilinear", padding_mode="border",
                                        align_corners=False).numpy()
    save_case("ext_gridsample_double", "GridSample", [("x", x), ("grid", grid)], [("y", y)],
              attrs=dict(padding_mode="border"))


# ---- Col2Im -------------------------------------------------------------------------------------

def gen_col2im():
    for case, (img, blk, dil, stride, pads) in enumerate([
            ((5, 5), (2, 2), (1, 1), (1, 1), (0, 0, 0, 0)),
            ((6, 7), (3, 2), (2, 1), (1, 2), (1, 0, 1, 2)),
            ((8, 4), (1, 3), (1, 1), (3, 1), (2, 1, 0, 1)),
            ((4, 4), (4, 4), (1, 1), (1, 1), (0, 0, 0, 0))]):
        n, c = 2, 3
        full = (img[0] + pads[0] + pads[2], img[1] + pads[1] + pads[3])
        nb = [(full[k] - (dil[k] * (blk[k] - 1) + 1)) // stride[k] + 1 for k in range(2)]
        x = rng.standard_normal((n, c * blk[0] * blk[1], nb[0] * nb[1])).astype(np.float32)
        y = torch.nn.functional.fold(torch.from_numpy(x), full, blk, dilation=dil, padding=0,
                                     stride=stride).numpy()
        y = y[:, :, pads[0]:pads[0] + img[0], pads[1]:pads[1] + img[1]]
        save_case(f"ext_col2im_{case}", "Col2Im",
                  [("x", x), ("image", np.array(img, np.int64)),
                   ("block", np.array(blk, np.int64))],
                  [("y", np.ascontiguousarray(y))],
                  attrs=dict(dilations=list(dil), strides=list(stride), pads=list(pads)),
                  opset=18)


if __name__ == "__main__":
    gen_quant()
    gen_nms()
    gen_roi()
    gen_gridsample()
    gen_col2im()
    print(f"cases written to {OUT}")
