"""The path users run at scale, measured on one device: export, pretraining and tokenizer training throughput.

1. Export jets/s for the medium transformer tokenizer (K = 8192, Q = 4 by default, every jet with 40 valid tracks),
   index-only (encoder + nearest-code search: no one-hot, no decoder):
   - precision: the encoder runs in bf16 when the indices agree with fp32 on at least 99.9% of tracks (all Q
     levels equal), else in fp32; the search is always fp32;
   - end to end: H5 files read and scaled by DataLoader reader workers, pinned host memory, asynchronous copies,
     indices back on the host and written as the heptokens npz (`indices [N, 40, Q]`);
   - bare forward: the same index-only forward on batches already on the device;
   - peer: the plain ResidualVQ forward of the same card (encoder -> vector-quantize-pytorch ResidualVQ ->
     decoder), what the field's exporters run (heptokens reports 4.3k jets/s on an A100; the target is 100x).
2. Pretraining tokens/s (valid positions per second) and peak memory for the default and a large backbone.
3. Tokenizer training steps/s (forward, backward, optimizer, dead-code upkeep) of the same tokenizer.

Writes `<out>/gpu_path.json` (default runs/benchmarks/) and prints a summary. On a CPU it runs the same code;
`--tiny` shrinks every size so the tests run it in seconds (a GPU call is then a rerun, not a first run).

    python benchmarks/gpu_path.py [--jets 400000] [--workers 8] [--tiny] [--out runs/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, peak_rss_mb, write_toy_jets  # noqa: E402

AGREEMENT = 0.999  # bf16 is used only when this share of tracks keeps all its indices
HEPTOKENS_A100_JETS_PER_S = 4300
TARGET_JETS_PER_S = 100 * HEPTOKENS_A100_JETS_PER_S
LARGE = {"d_model": 512, "n_layers": 8, "n_heads": 8, "d_ff": 2048}
TINY = {
    "jets": 96,
    "files": 2,
    "chunk": 32,
    "batch": 32,
    "codebook_size": 64,
    "size": "small",
    "peer_batch": 16,
    "pretrain_batch": 8,
    "pretrain_steps": 2,
    "tokenizer_steps": 2,
    "batch_objects": 256,
    "repeats": 1,
    "large": {"d_model": 48, "n_layers": 2, "n_heads": 4, "d_ff": 96},
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device: torch.device, fn, repeats: int = 1) -> float:
    """Seconds of the fastest of `repeats` calls (after they finish on the device)."""
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


# ----------------------------------------------------------------------------- 1. export


@torch.no_grad()
def index_forward(model, cont, cat, mask, bf16: bool) -> torch.Tensor:
    """Indices [B, N, Q] (-1 where masked): the encoder in bf16 or fp32, the residual search in fp32."""
    if not bf16:
        return model.encode_indices(cont, cat, mask, backend="torch")
    from treasure_lib.tokenizers.vqvae import row_chunks

    out = torch.full(mask.shape + (model.cfg.num_quantizers,), -1, dtype=torch.long, device=mask.device)
    with torch.autocast(device_type=mask.device.type, dtype=torch.bfloat16):
        z = torch.cat([model.encode_latent(cont[r], cat[r], mask[r])[mask[r]] for r in row_chunks(mask)])
    with torch.autocast(device_type=mask.device.type, enabled=False):
        out[mask] = model._indices_from_latent(z.float(), "torch")
    return out


class Reader(torch.utils.data.IterableDataset):
    """Read and scale the tracks of H5 files in chunks; DataLoader workers take whole files (worker i: files i::n)."""

    def __init__(self, files, collection, scaler, chunk_rows: int):
        self.files, self.collection, self.scaler, self.chunk_rows = list(files), collection, scaler, chunk_rows

    def __iter__(self):
        from treasure_lib.io.reader import H5Stream

        info = torch.utils.data.get_worker_info()
        mine = self.files[info.id :: info.num_workers] if info else self.files
        for path in mine:
            for batch in H5Stream([path], {"tracks": self.collection}, chunk_size=self.chunk_rows):
                oa = batch["tracks"]
                cont, cat = self.scaler.transform(oa.features, oa.mask)
                yield torch.from_numpy(cont), torch.from_numpy(cat), torch.from_numpy(np.ascontiguousarray(oa.mask))


def end_to_end(tok, files, device, bf16: bool, chunk_rows: int, workers: int, out: Path) -> dict:
    """H5 -> indices npz with reader workers and pinned memory; jets/s over the whole pass."""
    from treasure_lib.io.tokens import NpzWriter
    from treasure_lib.object_collections import load_sets

    collection = load_sets("params/objects.yaml")["jets"]["tracks"]
    loader = torch.utils.data.DataLoader(
        Reader(files, collection, tok.scaler, chunk_rows),
        batch_size=None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    writer = NpzWriter(out, collection.max_objects, tok.num_quantizers)
    sync(device)
    t0 = time.perf_counter()
    jets = 0
    for cont, cat, mask in loader:
        cont, cat, mask = (t.to(device, non_blocking=True) for t in (cont, cat, mask))
        idx = index_forward(tok.model, cont, cat, mask, bf16).to(torch.int16)  # K <= 32767: half the copy back
        writer.write(idx.cpu().numpy(), np.zeros(len(idx), np.int64))
        jets += len(idx)
    writer.close(tok.codebooks())
    seconds = time.perf_counter() - t0
    return {
        "jets": jets,
        "seconds": seconds,
        "jets_per_s": jets / seconds,
        "workers": workers,
        "pinned_memory": device.type == "cuda",
        "chunk_rows": chunk_rows,
    }


def export_section(args, device, tmp: Path) -> dict:
    from export import make_card

    from treasure_lib.tokenizers.card import load

    files = [tmp / f"jets_{i}.h5" for i in range(args.files)]
    for f in files:
        write_toy_jets(f, args.jets // args.files, all_tracks_valid=True)
    cards = tmp / "cards"
    make_card(cards, "transformer", args.size, args.codebook_size, args.levels, args.latent_dim, files[0])
    tok = load(cards / "tracks" / "card", device=str(device), backend="torch")
    model = tok.model.eval()
    staged = [b for b in Reader(files[:1], _tracks(), tok.scaler, args.batch)]
    staged = [tuple(t.to(device) for t in b) for b in staged]
    jets = sum(len(b[2]) for b in staged)
    fp32 = [index_forward(model, *b, bf16=False) for b in staged]
    bf16 = [index_forward(model, *b, bf16=True) for b in staged]
    valid = torch.cat([b[2].reshape(-1) for b in staged])
    same = torch.cat([(a == c).all(-1).reshape(-1) for a, c in zip(fp32, bf16)])[valid]
    agreement = float(same.float().mean())
    use_bf16 = agreement >= AGREEMENT
    bare = {
        p: jets / timed(device, lambda p=p: [index_forward(model, *b, bf16=p == "bf16") for b in staged], args.repeats)
        for p in ("fp32", "bf16")
    }

    def peer():  # the field's forward: the whole VQ-VAE, ResidualVQ with its distances over every code
        with torch.no_grad():
            for cont, cat, mask in staged:
                for s in range(0, len(mask), args.peer_batch):
                    model(cont[s : s + args.peer_batch], cat[s : s + args.peer_batch], mask[s : s + args.peer_batch])

    peer_jets_per_s = jets / timed(device, peer, args.repeats)
    e2e = end_to_end(tok, files, device, use_bf16, args.chunk, args.workers, tmp / "indices.npz")
    chosen = "bf16" if use_bf16 else "fp32"
    return {
        "tokenizer": {
            "encoder": "transformer",
            "size": args.size,
            "codebook_size": args.codebook_size,
            "levels": args.levels,
            "latent_dim": args.latent_dim,
            "tracks_per_jet": 40,
        },
        "jets": args.jets,
        "bf16_track_agreement": agreement,
        "precision": chosen,
        "end_to_end": e2e,
        "bare_forward_jets_per_s": bare,
        "peer_residualvq_forward_jets_per_s": peer_jets_per_s,
        "e2e_vs_bare": e2e["jets_per_s"] / bare[chosen],
        "e2e_vs_peer": e2e["jets_per_s"] / peer_jets_per_s,
        "target_jets_per_s": TARGET_JETS_PER_S,
        "heptokens_a100_jets_per_s": HEPTOKENS_A100_JETS_PER_S,
    }


def _tracks():
    from treasure_lib.object_collections import load_sets

    return load_sets("params/objects.yaml")["jets"]["tracks"]


# ----------------------------------------------------------------------------- 2. pretraining


def token_batch(vocab, batch: int, tracks: int, levels: int, device) -> dict:
    """A jets batch in the grouped layout, [CLS] [jet] tracks [SEP], every track valid (the worst case)."""
    from treasure_lib.vocabulary import CLS, EMPTY, SEP

    g = torch.Generator().manual_seed(0)
    length = tracks + 3
    tokens = torch.full((batch, length, levels), EMPTY, dtype=torch.long)
    tokens[:, 0, 0], tokens[:, -1, 0] = CLS, SEP
    jet, trk = vocab.offsets("jets"), vocab.offsets("tracks")
    for q, start in enumerate(jet):
        tokens[:, 1, q] = int(start) + torch.randint(0, vocab.ranges[0]["size"], (batch,), generator=g)
    for q, start in enumerate(trk):
        tokens[:, 2:-1, q] = int(start) + torch.randint(0, vocab.ranges[len(jet)]["size"], (batch, tracks), generator=g)
    type_ids = torch.zeros(batch, length, dtype=torch.long)
    type_ids[:, 1], type_ids[:, 2:-1] = 1, 2
    out = {
        "tokens": tokens,
        "type_ids": type_ids,
        "mask": torch.ones(batch, length, dtype=torch.bool),
        "label": torch.randint(0, 4, (batch,), generator=g),
        "weight": torch.ones(batch),
    }
    return {k: v.to(device) for k, v in out.items()}


def pretrain_section(args, device, model_params: dict) -> dict:
    from treasure_lib.models import BackboneConfig, MaskedTokenModel
    from treasure_lib.models.pretrain import seeded_generator
    from treasure_lib.vocabulary import Vocabulary

    vocab = Vocabulary()
    vocab.add("jets", 1, 3, 32, "binned", ["pt", "eta", "mass"])
    vocab.add("tracks", 2, args.levels, args.codebook_size)
    batch = token_batch(vocab, args.pretrain_batch, 40, args.levels, device)
    out = {}
    for name, shape in (("default", model_params), ("large", args.large)):
        cfg = BackboneConfig(
            vocab_size=vocab.size,
            n_types=3,
            max_len=batch["tokens"].shape[1],
            levels=args.levels,
            **{k: shape[k] for k in ("d_model", "n_layers", "n_heads", "d_ff")},
        )
        model = MaskedTokenModel(cfg.to_dict(), vocab.ranges, "bench", {"1": "jets", "2": "tracks"}, n_classes=4).to(
            device
        )
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        generator = seeded_generator(device, 0, 0, 0, 0)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

        def steps(n, model=model, opt=opt, generator=generator):
            for _ in range(n):
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    loss, probe_loss, *_ = model._step(batch, generator)
                opt.zero_grad(set_to_none=True)
                (loss + probe_loss).backward()
                opt.step()

        steps(1)  # warm-up (kernels, allocator)
        seconds = timed(device, lambda: steps(args.pretrain_steps))
        positions = int(batch["mask"].sum()) * args.pretrain_steps
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else peak_rss_mb()
        out[name] = {
            **{k: shape[k] for k in ("d_model", "n_layers", "n_heads", "d_ff")},
            "parameters": sum(p.numel() for p in model.parameters()),
            "batch": args.pretrain_batch,
            "tokens_per_s": positions / seconds,
            "steps_per_s": args.pretrain_steps / seconds,
            "peak_memory_mb": peak,
            "memory": "GPU max allocated" if device.type == "cuda" else "process peak RSS (cumulative)",
            "precision": "bf16-mixed" if device.type == "cuda" else "fp32",
        }
        del model, opt
    return out


# ----------------------------------------------------------------------------- 3. tokenizer training


def tokenizer_section(args, device) -> dict:
    from treasure_lib.tokenizers import codebooks
    from treasure_lib.tokenizers.lightning_module import VQVAEModule
    from treasure_lib.tokenizers.networks import PRESETS

    c = _tracks()
    n_cont = len(c.features) - len(c.categorical)
    net = {"kind": "transformer", **PRESETS[args.size]}
    module = VQVAEModule(
        {
            "n_continuous": n_cont,
            "n_categories": (6,),
            "encoder": net,
            "decoder": net,
            "latent_dim": args.latent_dim,
            "codebook_size": args.codebook_size,
            "num_quantizers": args.levels,
        }
    ).to(device)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    rows = max(1, args.batch_objects // 40)
    g = torch.Generator().manual_seed(0)
    batch = (
        torch.randn(rows, 40, n_cont, generator=g).to(device),
        torch.randint(0, 6, (rows, 40, 1), generator=g).to(device),
        torch.ones(rows, 40, dtype=torch.bool, device=device),
    )

    def steps(n):
        for _ in range(n):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                total, _, _, result = module._losses(batch)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            codebooks.replace_dead_codes(
                module.model.quantizer,
                result["latent"].detach(),
                module.model.cfg.dead_code_fraction,
                module._generator,
            )

    steps(1)
    seconds = timed(device, lambda: steps(args.tokenizer_steps))
    return {
        "size": args.size,
        "codebook_size": args.codebook_size,
        "levels": args.levels,
        "objects_per_step": rows * 40,
        "steps_per_s": args.tokenizer_steps / seconds,
        "objects_per_s": rows * 40 * args.tokenizer_steps / seconds,
        "precision": "bf16-mixed" if device.type == "cuda" else "fp32",
    }


# ----------------------------------------------------------------------------- main


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jets", type=int, default=400_000, help="jets exported end to end (split over --files)")
    ap.add_argument("--files", type=int, default=8, help="H5 files (reader workers take whole files)")
    ap.add_argument("--workers", type=int, default=8, help="DataLoader reader workers")
    ap.add_argument("--chunk", type=int, default=16_384, help="jets read per chunk")
    ap.add_argument("--batch", type=int, default=16_384, help="jets per staged batch of the bare forward")
    ap.add_argument("--peer-batch", type=int, default=2048, help="jets per peer (ResidualVQ) forward")
    ap.add_argument("--codebook-size", type=int, default=8192)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--latent-dim", type=int, default=32)
    ap.add_argument("--size", default="medium", choices=("small", "medium", "large"))
    ap.add_argument("--pretrain-batch", type=int, default=512)
    ap.add_argument("--pretrain-steps", type=int, default=20)
    ap.add_argument("--tokenizer-steps", type=int, default=20)
    ap.add_argument("--batch-objects", type=int, default=16_384, help="tracks per tokenizer training step")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of the in-memory forwards (best counts)")
    ap.add_argument("--params", default="params/default.yaml", help="where the default backbone comes from")
    ap.add_argument("--tiny", action="store_true", help="every size tiny: what the tests run on a CPU")
    ap.add_argument("--out", default="runs/benchmarks", help="folder of gpu_path.json")
    args = ap.parse_args(argv)
    args.large = dict(LARGE)
    if args.tiny:
        for k, v in TINY.items():
            setattr(args, k, v)
        args.workers = min(args.workers, 1)
    return args


def main(argv=None) -> dict:
    from treasure_lib import config

    args = parse(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_params = config.load([args.params])["model"]
    result = {
        "benchmark": "gpu_path",
        "machine": machine(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "tiny": args.tiny,
    }
    threads = torch.get_num_threads()
    if args.tiny:  # tiny tensors on a shared CPU: more threads only spin-wait on each other (100x slower)
        torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result["export"] = export_section(args, device, Path(tmp))
        result["pretraining"] = pretrain_section(args, device, model_params)
        result["tokenizer_training"] = tokenizer_section(args, device)
    finally:
        torch.set_num_threads(threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_path.json").write_text(json.dumps(result, indent=2))
    print(summary(result))
    print(f"-> {out / 'gpu_path.json'}")
    return result


def summary(r: dict) -> str:
    e = r["export"]
    lines = [
        f"device: {r['device']}{' (tiny sizes)' if r['tiny'] else ''}",
        f"export, {e['tokenizer']['size']} transformer K={e['tokenizer']['codebook_size']} "
        f"Q={e['tokenizer']['levels']}, 40 tracks: bf16 agrees with fp32 on "
        f"{100 * e['bf16_track_agreement']:.3f}% of tracks -> {e['precision']}",
        f"  end to end {e['end_to_end']['jets_per_s']:,.0f} jets/s ({e['end_to_end']['workers']} reader workers, "
        f"pinned {e['end_to_end']['pinned_memory']}); bare forward fp32 "
        f"{e['bare_forward_jets_per_s']['fp32']:,.0f} / bf16 {e['bare_forward_jets_per_s']['bf16']:,.0f} "
        f"jets/s; peer ResidualVQ forward {e['peer_residualvq_forward_jets_per_s']:,.0f} jets/s",
        f"  e2e/bare {e['e2e_vs_bare']:.2f}, e2e/peer {e['e2e_vs_peer']:.1f}x; target "
        f"{TARGET_JETS_PER_S:,} jets/s ({'met' if e['end_to_end']['jets_per_s'] >= TARGET_JETS_PER_S else 'not'} "
        f"met)",
    ]
    for name, p in r["pretraining"].items():
        lines.append(
            f"pretraining, {name} backbone (d={p['d_model']}, {p['n_layers']} layers, "
            f"{p['parameters'] / 1e6:.2f} M parameters): {p['tokens_per_s']:,.0f} tokens/s, peak memory "
            f"{p['peak_memory_mb']:,.0f} MB ({p['memory']})"
        )
    t = r["tokenizer_training"]
    lines.append(
        f"tokenizer training, {t['size']} transformer K={t['codebook_size']} Q={t['levels']}: "
        f"{t['steps_per_s']:.2f} steps/s of {t['objects_per_step']} tracks "
        f"({t['objects_per_s']:,.0f} tracks/s)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
