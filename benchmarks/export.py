"""Export throughput: end-to-end H5 -> tokens vs the bare index-only forward vs the field's full forward.

For the MLP and the medium transformer tokenizer (K = 8192, Q = 4 by default, every jet
with 40 valid tracks), on the same batches:
- end-to-end export jets/s (read, scale, encode, assemble sequences, write Parquet + npz) of the 10x file;
- our bare index-only forward (encoder + nearest-code search, no one-hot, no decoder), in memory;
- the peer: the same card's full model forward through vector-quantize-pytorch's ResidualVQ
  (encoder -> ResidualVQ -> decoder, indices taken from its output), what the field's exporters run;
plus e2e/bare (target >= 0.7), the speedup over the peer, and the peak RSS of exporting a 1x and a
10x file in fresh processes (target within 10%). Peak RSS moves by a few percent between identical runs
(allocator arenas, the reader thread's timing), so the 1x/10x pair runs `--rss-repeats` times and the
median ratio is the result, the spread printed beside it. On a GPU the same script measures the CUDA path.

    python benchmarks/export.py [--jets 20000] [--transformer-jets 2000] [--codebook-size 8192] [--rss-repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_child, write_json, write_toy_jets  # noqa: E402

CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from _common import peak_rss_mb
from export import params_for
from treasure_lib.tokenizers.export import export_file, token_sets
params = params_for(sys.argv[2], sys.argv[3])
sets = token_sets(params.study, params.data, params.tokenizer, params.export, params.sequence,
                  device=params.export.device)
t0 = time.perf_counter()
r = export_file(Path(sys.argv[1]), sets, params.study, params.data, params.export, params.selection, Path(sys.argv[3]))
dt = time.perf_counter() - t0
print(json.dumps({"jets": r["rows"], "seconds": dt, "jets_per_s": r["rows"] / dt,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def params_for(cards_dir: str, out_dir: str) -> dict:
    import torch

    from treasure_lib import config

    # chunks and Parquet row groups of 500 jets: the 1x and 10x files both stream whole chunks and row groups, so peak
    # memory compares steady states (the writer holds up to one row group: with the default 10k rows it would grow
    # with every file smaller than that, which says nothing about larger files)
    return config.load(
        ["params/default.yaml"],
        [
            "data.chunk_size=500",
            "export.batch_size=500",
            "export.row_group_size=500",
            f"export.cards_dir={cards_dir}",
            f"export.output_dir={out_dir}",
            "export.overwrite=true",
            "data.cuts=[]",
            "data.collections=[tracks]",
            "tokenizer.collections=[tracks]",
            "sequence.order=[tracks]",
            "export.features=false",
            "export.columns={}",
            "data.label={}",
            f"export.device={'cuda' if torch.cuda.is_available() else 'cpu'}",
        ],
    )


def make_card(
    cards_dir: Path, encoder: str, size: str, codebook_size: int, levels: int, latent_dim: int, sample: Path
) -> None:
    """An untrained tokenizer with k-means-initialised codebooks: throughput does not depend on training."""
    import torch

    from treasure_lib.io.reader import H5Stream
    from treasure_lib.object_collections import load_sets
    from treasure_lib.preprocessing import CollectionScaler
    from treasure_lib.tokenizers.card import VQVAETokenizer, save
    from treasure_lib.tokenizers.codebooks import init_from_sample
    from treasure_lib.tokenizers.networks import PRESETS
    from treasure_lib.tokenizers.train import _collection_info
    from treasure_lib.tokenizers.vqvae import ObjectVQVAE, VQVAEConfig

    c = load_sets("params/objects.yaml")["jets"]["tracks"]
    batch = next(iter(H5Stream([sample], {"tracks": c}, chunk_size=600)))  # 24k tracks: enough for k-means init
    scaler = CollectionScaler.for_collection(c).fit(batch["tracks"].features, batch["tracks"].mask)
    net = {"kind": encoder, **PRESETS[size]}
    torch.manual_seed(0)
    model = ObjectVQVAE(
        VQVAEConfig(
            n_continuous=len(scaler.continuous),
            n_categories=tuple(scaler.n_categories),
            encoder=net,
            decoder=net,
            latent_dim=latent_dim,
            codebook_size=codebook_size,
            num_quantizers=levels,
            kmeans_iters=2,
        )
    )
    cont, cat = scaler.transform(batch["tracks"].features, batch["tracks"].mask)
    latents = model.encode_latents(
        torch.from_numpy(cont), torch.from_numpy(cat), torch.from_numpy(batch["tracks"].mask)
    )
    init_from_sample(model.quantizer, latents, iters=2, seed=0, objects_per_batch=len(latents))
    save(VQVAETokenizer(_collection_info(c), scaler, model.eval()), cards_dir / "tracks" / "card")


def forwards(cards_dir: Path, sample: Path, params: dict) -> dict:
    """On the same batches, already read and scaled: our index-only encoding, and the full ResidualVQ forward."""
    import torch

    from treasure_lib.io.reader import H5Stream
    from treasure_lib.object_collections import load_sets
    from treasure_lib.tokenizers.card import load

    e = params["export"]
    tok = load(cards_dir / "tracks" / "card", device=e["device"], backend=e["backend"])
    c = load_sets("params/objects.yaml")["jets"]["tracks"]
    prepared = []
    step = e["batch_size"]
    for batch in H5Stream([sample], {"tracks": c}, chunk_size=params["data"]["chunk_size"]):
        cont, cat = tok.scaler.transform(batch["tracks"].features, batch["tracks"].mask)
        for s in range(0, len(cont), step):
            prepared.append(
                tuple(
                    torch.from_numpy(np.ascontiguousarray(a[s : s + step])).to(tok.device)
                    for a in (cont, cat, batch["tracks"].mask)
                )
            )
    backend = tok._backend()
    model = tok.model.eval()

    def timed(step) -> dict:
        if tok.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        n = 0
        for cont, cat, mask in prepared:
            step(cont, cat, mask)
            n += len(mask)
        if tok.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        return {"jets": n, "seconds": dt, "jets_per_s": n / dt}

    def full_forward(cont, cat, mask):  # what the field's exporters run: the whole VQ-VAE, indices from ResidualVQ
        with torch.no_grad():
            return model(cont, cat, mask)["indices"].cpu()

    index_only = lambda cont, cat, mask: model.encode_indices(cont, cat, mask, backend=backend).cpu()  # noqa: E731
    cont, cat, mask = prepared[0]
    same = (full_forward(cont, cat, mask) == index_only(cont, cat, mask)[mask].cpu()).float().mean().item()
    bare = {**timed(index_only), "backend": backend, "device": str(tok.device)}
    peer = {
        **timed(full_forward),
        "what": "encoder -> vector-quantize-pytorch ResidualVQ -> decoder (eval)",
        "index_agreement_with_ours": same,
    }
    return {"bare": bare, "peer": peer}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--jets", type=int, default=2_000, help="jets in the 1x file for the MLP tokenizer (CPU-sized default)"
    )
    ap.add_argument("--transformer-jets", type=int, default=500, help="jets in the 1x file for the transformer")
    ap.add_argument("--codebook-size", type=int, default=8192)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--latent-dim", type=int, default=32, help="codebook vector dimension (the default study's)")
    ap.add_argument("--rss-repeats", type=int, default=3, help="1x/10x export pairs measured (the median ratio counts)")
    args = ap.parse_args()
    here = str(Path(__file__).resolve().parent)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, encoder, size, n in (
            ("mlp", "mlp", "small", args.jets),
            ("transformer_medium", "transformer", "medium", args.transformer_jets),
        ):
            files = {s: tmp / f"{name}_x{s}.h5" for s in (1, 10)}
            for s, f in files.items():
                write_toy_jets(f, n * s, all_tracks_valid=True)
            cards = tmp / f"cards_{name}"
            make_card(cards, encoder, size, args.codebook_size, args.levels, args.latent_dim, files[1])
            params = params_for(str(cards), str(tmp / "out"))
            pairs = [
                {
                    f"x{s}": run_child(CHILD, str(f), str(cards), str(tmp / f"out_{name}_{s}_{i}"), here)
                    for s, f in files.items()
                }
                for i in range(args.rss_repeats)
            ]
            ratios = [p["x10"]["peak_rss_mb"] / p["x1"]["peak_rss_mb"] for p in pairs]
            e2e = pairs[int(np.argsort(ratios)[len(ratios) // 2])]  # the run with the median ratio
            f = forwards(cards, files[10], params)  # steady state: the same batches as the 10x export
            bare, peer = f["bare"], f["peer"]
            r = {
                "encoder": encoder,
                "size": size,
                "codebook_size": args.codebook_size,
                "levels": args.levels,
                "latent_dim": args.latent_dim,
                "tracks_per_jet": 40,
                "end_to_end": e2e,
                "bare_forward": bare,
                "peer_full_forward": peer,
                "ratio_e2e_vs_bare": e2e["x10"]["jets_per_s"] / bare["jets_per_s"],
                "speedup_bare_vs_peer": bare["jets_per_s"] / peer["jets_per_s"],
                "speedup_e2e_vs_peer": e2e["x10"]["jets_per_s"] / peer["jets_per_s"],
                "rss_ratio_10x_vs_1x": e2e["x10"]["peak_rss_mb"] / e2e["x1"]["peak_rss_mb"],
                "rss_ratios_all_repeats": ratios,
            }
            results[name] = r
            print(
                f"{name:<19} e2e {e2e['x10']['jets_per_s']:8.0f} jets/s (1x file: {e2e['x1']['jets_per_s']:.0f})  "
                f"bare index-only {bare['jets_per_s']:8.0f} jets/s [{bare['backend']}, {bare['device']}]  "
                f"peer full ResidualVQ forward {peer['jets_per_s']:8.0f} jets/s  "
                f"e2e/bare {r['ratio_e2e_vs_bare']:.2f} (target >= 0.7)  e2e/peer {r['speedup_e2e_vs_peer']:.2f}x  "
                f"peak RSS {e2e['x1']['peak_rss_mb']:.0f} / {e2e['x10']['peak_rss_mb']:.0f} MB = "
                f"{r['rss_ratio_10x_vs_1x']:.3f} (target <= 1.10; median of {len(ratios)}: "
                f"{', '.join(f'{x:.3f}' for x in ratios)})"
            )
    out = write_json("export", {"runs": results, "heptokens_a100_jets_per_s": 4300})
    print(f"-> {out}")
    print(
        json.dumps(
            {
                k: {"e2e_vs_bare": round(v["ratio_e2e_vs_bare"], 3), "e2e_vs_peer": round(v["speedup_e2e_vs_peer"], 2)}
                for k, v in results.items()
            }
        )
    )


if __name__ == "__main__":
    main()
