#!/usr/bin/env python3
"""PyTorch reference for `npm run bench`: reads one JSON request per line on stdin, times the
same work with torch on CPU, answers one JSON line. The first line it writes says whether
torch imported ({"ready": true, "torch": version} or {"ready": false, "reason": ...}), so
the runner can interleave ours and torch's measurements shape by shape.

Requests: {"op": "conv", "dir": "fwd"|"bwd_data"|"bwd_weight", "x": [N,C,H,W],
"w": [O,C,KH,KW], "stride": s, "pad": p, "reps": r, "warm_ms": w, "min_ms": m} → {"seconds": [..]}:
warm up for w ms, then time at least r calls and m ms, as the TS side does for ours.
{"op": "iresnet", "layers": [..], "widths": [..], "embedding": e, "placement": p, "batch": b,
"reps", "warm_ms", "min_ms"} → {"seconds": [..]}: eval forward of that IResNet.
{"op": "decode", "rec": path, ...} → {"seconds": [..], "images": n}: one PIL pass per call.
{"op": "train_step", iresnet fields + "classes"} → {"seconds": [..]}: a CosFace SGD step.
{"op": "cosface_head", "classes", "batch", "embedding", ...} → {"seconds": [..]}: the head alone.
"""
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures"))

try:
    import torch
except Exception as e:  # noqa: BLE001 - report any import failure as the reason
    print(json.dumps({"ready": False, "reason": f"torch is not importable: {e}"}), flush=True)
    sys.exit(0)


def timed(req, run, grad=False):
    """Warm up for warm_ms, then time at least `reps` calls and min_ms (as the TS side does)."""
    with torch.set_grad_enabled(grad):
        start = time.perf_counter()
        while time.perf_counter() - start < req["warm_ms"] / 1e3:
            run()
        out, start = [], time.perf_counter()
        while len(out) < req["reps"] or time.perf_counter() - start < req["min_ms"] / 1e3:
            t = time.perf_counter()
            run()
            out.append(time.perf_counter() - t)
    return {"seconds": out}


def iresnet(req):
    """Eval-mode forward of an IResNet (random weights) on a random batch."""
    from torch_iresnet import IResNet

    torch.manual_seed(0)
    model = IResNet(req["placement"], req["layers"], req["widths"], req["embedding"]).eval()
    x = torch.randn(req["batch"], 3, 112, 112)
    return timed(req, lambda: model(x))


def decode(req):
    """Read every record of a .rec (via its .idx), decode with PIL, flip half, ToTensor and
    Normalize as torchvision pipelines do, on the calling thread; one call = one pass."""
    import io
    import random
    import struct

    import numpy as np
    from PIL import Image

    rec = open(req["rec"], "rb").read()
    offsets = [int(line.split("\t")[1]) for line in open(req["rec"][:-4] + ".idx") if line.strip()]
    payloads = []
    for off in offsets:
        magic, word = struct.unpack_from("<II", rec, off)
        n = word & ((1 << 29) - 1)
        p = rec[off + 8 : off + 8 + n]
        flag = struct.unpack_from("<I", p)[0]
        body = p[24 + 4 * flag :]
        if body:
            payloads.append(body)
    rnd = random.Random(0)
    mean = torch.tensor([0.5, 0.5, 0.5]).view(3, 1, 1)

    def run():
        for body in payloads:
            img = Image.open(io.BytesIO(body)).convert("RGB")
            if rnd.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            t = torch.from_numpy(np.asarray(img, dtype=np.uint8)).permute(2, 0, 1).float().div(255)
            (t - mean) / 0.5

    torch.set_num_threads(1)
    try:
        out = timed(req, run)
    finally:
        torch.set_num_threads(threads)
    out["images"] = len(payloads)
    return out


def conv(req):
    torch.manual_seed(0)
    x = torch.randn(*req["x"])
    w = torch.randn(*req["w"]) * 0.1
    s, p = req["stride"], req["pad"]
    y = torch.nn.functional.conv2d(x, w, None, s, p)
    gy = torch.randn_like(y)

    def run():
        if req["dir"] == "fwd":
            return torch.nn.functional.conv2d(x, w, None, s, p)
        mask = [req["dir"] == "bwd_data", req["dir"] == "bwd_weight", False]
        return torch.ops.aten.convolution_backward(gy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask)

    return timed(req, run)


def cosface_logits(emb, weight, labels, s=64.0, m=0.4):
    """CosFace as arcface_torch: cosines of normalised embeddings and centres, m off the target, × s."""
    cos = torch.nn.functional.linear(torch.nn.functional.normalize(emb), torch.nn.functional.normalize(weight)).clamp(-1, 1)
    return s * (cos - m * torch.nn.functional.one_hot(labels, weight.shape[0]))


def train_step(req):
    """One SGD step of an IResNet (train mode) with a CosFace head: forward, loss, backward,
    clip 5 on the backbone, update."""
    from torch_iresnet import IResNet

    torch.manual_seed(0)
    model = IResNet(req["placement"], req["layers"], req["widths"], req["embedding"]).train()
    weight = torch.nn.Parameter(torch.randn(req["classes"], req["embedding"]) * 0.01)
    opt = torch.optim.SGD([*model.parameters(), weight], lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(req["batch"], 3, 112, 112)
    labels = torch.arange(req["batch"]) % req["classes"]

    def run():
        loss = torch.nn.functional.cross_entropy(cosface_logits(model(x), weight, labels), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5)
        opt.step()
        opt.zero_grad()

    return timed(req, run, grad=True)


def cosface_head(req):
    """Forward + backward of a full-softmax CosFace classifier over `classes` centres."""
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(req["classes"], req["embedding"]) * 0.01)
    emb = torch.randn(req["batch"], req["embedding"], requires_grad=True)
    labels = torch.arange(req["batch"]) * 7919 % req["classes"]

    def run():
        torch.nn.functional.cross_entropy(cosface_logits(emb, weight, labels), labels).backward()
        weight.grad = None
        emb.grad = None

    return timed(req, run, grad=True)


OPS = {"conv": conv, "iresnet": iresnet, "decode": decode, "train_step": train_step, "cosface_head": cosface_head}

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
torch.set_num_threads(threads)
print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps(OPS[req["op"]](req)), flush=True)
