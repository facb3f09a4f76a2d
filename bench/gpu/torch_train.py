#!/usr/bin/env python3
"""The `gpu-train` suite, PyTorch's side: for every case our bench printed (one JSON line
each, from bench/gpu/train-bench.ts), the same step in PyTorch eager AMP on the same GPU —
IResNet (test/fixtures/torch_iresnet.py), autocast fp16 forward, CosFace over the same
classes in fp32 (arcface_torch's partial FC at sample rate 1), GradScaler backward, unscale,
clip 5, SGD (momentum 0.9, wd 5e-4) — 3 warm steps, 10 timed, peak from
torch.cuda.max_memory_allocated. NCHW and channels-last; the faster one is the reference.
Checkpointed cases wrap each stage in torch.utils.checkpoint. Then, the results written,
the first case once more with the model under torch.compile (its compile time in the warm
steps), reported beside the eager reference if it finishes within run.sh's limit. Writes the bench convention's
JSON with images/s (ours / torch) and peak MiB (ours / torch, lower is better).

usage: torch_train.py OURS.jsonl OUT.json
"""
import gc
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures"))


def step_fn(torch, case, channels_last, compiled=False):
    from torch_iresnet import IResNet
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    dev = "cuda"
    model = IResNet(case["placement"], case["layers"]).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    class Checkpointed(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return checkpoint(self.inner, x, use_reentrant=False)

    if case["checkpointing"]:
        for name in ["layer1", "layer2", "layer3", "layer4"]:
            setattr(model, name, Checkpointed(getattr(model, name)))
    if compiled:
        model = torch.compile(model)
    centres = torch.nn.Parameter(torch.randn(case["classes"], 512, device=dev) * 0.01)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD([{"params": params}, {"params": [centres]}], lr=0.1, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", init_scale=1024, growth_interval=100)
    b = case["batch"]
    x = torch.randn(b, 3, 112, 112, device=dev)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    labels = torch.tensor([(i * 7919) % case["classes"] for i in range(b)], device=dev)

    def step():
        with torch.autocast("cuda", dtype=torch.float16):
            emb = model(x)
        cos = F.linear(F.normalize(emb.float()), F.normalize(centres))
        onehot = F.one_hot(labels, case["classes"]).bool()
        logits = 64.0 * torch.where(onehot, cos - 0.4, cos)
        loss = F.cross_entropy(logits, labels)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 5)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    return step


def measure(torch, case, channels_last, compiled=False):
    torch.cuda.empty_cache()
    step = step_fn(torch, case, channels_last, compiled)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    return 10 * case["batch"] / (time.perf_counter() - t), torch.cuda.max_memory_allocated()


def main():
    ours = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
    try:
        import torch

        ok = torch.cuda.is_available()
    except Exception as e:  # noqa: BLE001 - any import failure is the reason
        torch, ok = None, False
        print(f"reference: none (torch is not importable: {e})")
    if ok:
        torch.backends.cudnn.benchmark = True
        # The same TF32 policy as ours (recorded in each of our lines).
        policy = ours[0].get("tf32", {}) if ours else {}
        torch.backends.cudnn.allow_tf32 = policy.get("convolutions", True)
        torch.backends.cuda.matmul.allow_tf32 = policy.get("matmul", False)
    results = []
    for c in ours:
        name = f"{c['network']} b{c['batch']} f16{' ckpt' if c['checkpointing'] else ''}"
        ref = None
        if ok:
            runs = []
            for cl in (False, True):
                try:
                    runs.append(measure(torch, c, cl) + (cl,))
                except Exception as e:  # noqa: BLE001 - out of memory or otherwise: reported, not fatal
                    print(f"torch {name}{' channels-last' if cl else ''}: {str(e).splitlines()[0]}")
                gc.collect()  # outside the except: the traceback no longer holds the model
                torch.cuda.empty_cache()
            ref = max(runs) if runs else None
        mib = c["peakBytes"] / 2**20
        results.append({"suite": "gpu-train", "name": f"{name} images/s", "unit": "images/s", "ours": c["imagesPerSecond"], "reference": ref and ref[0], "ratio": ref and c["imagesPerSecond"] / ref[0]})
        results.append({"suite": "gpu-train", "name": f"{name} peak MiB", "unit": "MiB (lower is better)", "ours": mib, "reference": ref and ref[1] / 2**20, "ratio": ref and mib / (ref[1] / 2**20)})
        line = f"{name:<22} ours {c['imagesPerSecond']:8.1f} img/s {mib:8.0f} MiB"
        if ref:
            line += f" | torch{' (channels-last)' if ref[2] else ''} {ref[0]:8.1f} img/s {ref[1] / 2**20:8.0f} MiB | ratio {c['imagesPerSecond'] / ref[0]:.2f}"
        print(line, flush=True)
    machine = {"suite": "gpu-train", "gpu": torch.cuda.get_device_name(0) if ok else None}
    json.dump({"machine": machine, "results": results}, open(sys.argv[2], "w"), indent=1)
    if ok and ours:
        c = ours[0]
        name = f"{c['network']} b{c['batch']} f16 vs torch.compile"
        try:
            rate, peak = measure(torch, c, True, compiled=True)
            results.append({"suite": "gpu-train", "name": f"{name} images/s", "unit": "images/s", "ours": c["imagesPerSecond"], "reference": rate, "ratio": c["imagesPerSecond"] / rate})
            print(f"{name:<22} torch.compile (channels-last) {rate:8.1f} img/s {peak / 2**20:8.0f} MiB | ratio {c['imagesPerSecond'] / rate:.2f}", flush=True)
            json.dump({"machine": machine, "results": results}, open(sys.argv[2], "w"), indent=1)
        except Exception as e:  # noqa: BLE001 - no compiler toolchain, or otherwise: reported
            print(f"torch.compile: {str(e).splitlines()[0] if str(e) else type(e).__name__}")


if __name__ == "__main__":
    main()
