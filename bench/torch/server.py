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


def timed(req, run):
    """Warm up for warm_ms, then time at least `reps` calls and min_ms (as the TS side does)."""
    with torch.no_grad():
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


OPS = {"conv": conv, "iresnet": iresnet}

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
torch.set_num_threads(threads)
print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps(OPS[req["op"]](req)), flush=True)
