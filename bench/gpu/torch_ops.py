#!/usr/bin/env python3
"""The `gpu-ops` suite, PyTorch's side: times every case our bench printed (one JSON line
each, from crates/cuda/benches/gpu_ops.rs) with torch on the same GPU, the same protocol
(3 warm calls, then at least 10 calls and 0.2 s, each ending in a synchronise; median), and
writes the bench convention's JSON: {"machine", "results": [{suite, name, unit, ours,
reference, ratio}]} with TFLOP/s (higher is better). torch runs as configured by default,
plus cudnn.benchmark = True (our side measures cuDNN's algorithms per shape too); its conv
may use TF32 like ours, its fp32 matmul does not, like ours.

usage: torch_ops.py OURS.jsonl OUT.json
"""
import json
import sys
import time


def timed(torch, once):
    for _ in range(3):
        once()
    torch.cuda.synchronize()
    out, start = [], time.perf_counter()
    while len(out) < 10 or time.perf_counter() - start < 0.2:
        t = time.perf_counter()
        once()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    out.sort()
    return out[len(out) // 2]


def allreduce(torch, case):
    """torch.distributed's NCCL all-reduce of the same bucket on a one-process group."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl", init_method="tcp://127.0.0.1:29517", rank=0, world_size=1)
    g = torch.randn(case["n"], device="cuda")
    avg = dist.ReduceOp.AVG

    def run():
        if case["f16"]:  # the bucket travels as f16, as ours
            h = g.half()
            dist.all_reduce(h, op=avg)
            g.copy_(h)
        else:
            dist.all_reduce(g, op=avg)

    return timed(torch, run)


def reference(torch, case):
    dt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[case["dtype"]]
    dev = "cuda"
    if case["kind"] == "allreduce":
        return allreduce(torch, case)
    if case["kind"] == "gemm":
        n = case["n"]
        a, b = torch.randn(n, n, device=dev, dtype=dt), torch.randn(n, n, device=dev, dtype=dt)
        return timed(torch, lambda: a @ b)
    x = torch.randn(*case["x"], device=dev, dtype=dt)
    w = torch.randn(*case["w"], device=dev, dtype=dt)
    s, p = case["stride"], case["pad"]
    conv = torch.nn.functional.conv2d
    gy = conv(x, w, None, s, p)
    grad = torch.nn.grad
    if case["dir"] == "fwd":
        return timed(torch, lambda: conv(x, w, None, s, p))
    if case["dir"] == "bwd_data":
        return timed(torch, lambda: grad.conv2d_input(x.shape, w, gy, s, p))
    return timed(torch, lambda: grad.conv2d_weight(x, w.shape, gy, s, p))


def main():
    ours = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
    try:
        import torch

        ok = torch.cuda.is_available()
        why = None if ok else "torch sees no GPU"
    except Exception as e:  # noqa: BLE001 - any import failure is the reason
        torch, ok, why = None, False, f"torch is not importable: {e}"
    machine = {"suite": "gpu-ops"}
    if ok:
        torch.backends.cudnn.benchmark = True
        machine.update(gpu=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    else:
        print(f"reference: none ({why})")
    results = []
    for c in ours:
        try:
            ref = reference(torch, c) if ok else None
        except Exception as e:  # noqa: BLE001 - a reference that cannot run is reported, not fatal
            print(f"reference for {c['name']}: {e}")
            ref = None
        work, unit = (c["bytes"] / 1e9, "GB/s") if c["kind"] == "allreduce" else (c["flops"] / 1e12, "TFLOP/s")
        name = f"{c.get('dir', c['kind']):<10} {c['dtype']} {c['name']}"
        r_ours, r_ref = work / c["seconds"], (work / ref if ref else None)
        results.append({"suite": "gpu-ops", "name": name, "unit": unit, "ours": r_ours, "reference": r_ref, "ratio": r_ours / r_ref if r_ref else None})
        ratio = f"{r_ours / r_ref:5.2f}" if r_ref else "  n/a"
        print(f"{name:<48} ours {r_ours:8.2f}  torch {r_ref or 0:8.2f} {unit}  ratio {ratio}", flush=True)
    json.dump({"machine": machine, "results": results}, open(sys.argv[2], "w"), indent=1)
    if ok and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # else NCCL's teardown at exit warns


if __name__ == "__main__":
    main()
