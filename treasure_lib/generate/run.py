"""`treasure generate`: Pythia 8 -> detector emulation -> H5, several processes in parallel.

Each (process, file index) is one job with its own seed derived from the study seed and
the job's name, so the same params give byte-identical files whatever the number of workers.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import yaml
from tqdm import tqdm

from ..config import DataParams, GenerateParams, StudyParams
from ..errors import ConfigError
from ..io.h5_writer import H5Writer
from ..object_collections import load_sets
from ..progress import shown
from .detector import detector_config
from .filters import LeptonFilter, filter_of_block
from .simulate import JetSelection, simulate_batch
from .truth import ParticleTable, truth_from_events

log = logging.getLogger(__name__)
PB_PER_MB = 1e9
MAX_PYTHIA_SEED = 900_000_000
MAX_TRIED_PER_EVENT = 200  # a filter keeping less than 1 in 200 events is a mistake, not a sample


def load_processes(path: str | Path) -> dict:
    """Named blocks of Pythia settings; each needs `settings` (a list of strings) and may name a
    `generator_cut` (text: the phase-space cut its settings make, recorded in the file metadata) and a
    `filter` (treasure_lib/generate/filters.py)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"processes file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    for name, block in data.items():
        if not isinstance(block, dict) or not isinstance(block.get("settings"), list):
            raise ConfigError(f"{path}: process '{name}' needs 'settings', a list of Pythia setting strings")
        if not isinstance(block.get("generator_cut", ""), str):
            raise ConfigError(
                f"{path}: process '{name}': 'generator_cut' must be text describing the cut the "
                f"settings make, got {block['generator_cut']!r}"
            )
        filter_of_block(block, f"{path}: process '{name}'")
    return data


def job_seed(study_seed: int, name: str) -> int:
    """A Pythia seed (1..9e8) from the study seed and the job's name, independent of job order."""
    ss = np.random.SeedSequence([study_seed, zlib.crc32(name.encode())])
    return int(ss.generate_state(1)[0] % (MAX_PYTHIA_SEED - 1)) + 1


@dataclass(frozen=True)
class Job:
    process: str
    index: int
    n_events: int
    seed: int
    settings: tuple
    dsid: int
    events_path: str | None
    jets_path: str | None
    batch_size: int
    detector: dict
    objects_file: str
    jet_selection: dict
    first_event_number: int
    gzip_level: int = 1
    generator_cut: str = ""  # the phase-space cut the settings make (text, for the metadata)
    generator_filter: dict | None = None  # a LeptonFilter's fields: events failing it are generated, not kept


def make_pythia(settings, seed: int):
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for s in list(settings) + ["Random:setSeed = on", f"Random:seed = {seed}"]:
        if not pythia.readString(s):
            raise ConfigError(f"Pythia rejected the setting {s!r}")
    if not pythia.init():
        raise ConfigError("Pythia failed to initialise with settings: " + "; ".join(settings))
    return pythia


def charge_lookup(pythia):
    """PDG ids -> charges from Pythia's particle data, each id asked once (for `ParticleTable`)."""
    cache: dict[int, float] = {}

    def charge_of(ids):
        out = []
        for i in ids.tolist():
            if i not in cache:
                cache[i] = float(pythia.particleData.charge(i))
            out.append(cache[i])
        return np.array(out)

    return charge_of


def _filtered(events, weights: np.ndarray, accept: np.ndarray, needed: int):
    """The first `needed` accepted events of a batch, and how many events (and weight) it took to find them."""
    kept = np.flatnonzero(accept)[:needed]
    n_tried = int(kept[-1]) + 1 if len(kept) == needed else len(accept)
    return events[kept], weights[kept], n_tried, float(weights[:n_tried].astype(np.float64).sum())


def run_job(job: Job, progress=None) -> dict:
    """Generate one file (pair): returns counts and the cross section."""
    sets = load_sets(job.objects_file)
    cfg = detector_config(job.detector)
    sel = JetSelection(**job.jet_selection)
    t_init = time.perf_counter()
    pythia = make_pythia(job.settings, job.seed)
    init_s = time.perf_counter() - t_init
    particles = ParticleTable(charge_lookup(pythia))
    rng = np.random.default_rng(job.seed)
    writers = {}
    try:
        if job.events_path:
            writers["events"] = H5Writer(
                job.events_path, chunk_rows=min(1000, job.n_events), compression_opts=job.gzip_level
            )
        if job.jets_path:
            writers["jets"] = H5Writer(job.jets_path, chunk_rows=1000, compression_opts=job.gzip_level)
        event_filter = None if job.generator_filter is None else LeptonFilter(**job.generator_filter)
        keep_event = None if event_filter is None else event_filter.accept
        done, n_jets, sum_of_weights = 0, 0, 0.0
        tried, sum_of_weights_tried = 0, 0.0
        t_loop = time.perf_counter()
        while done < job.n_events:
            n = min(job.batch_size, job.n_events - done)
            ask = job.batch_size if keep_event else n  # filtered: whole batches, of which it keeps what passes
            events = pythia.nextBatch(ask)
            if len(events) != ask:
                raise RuntimeError(f"Pythia returned {len(events)} of {ask} events for process {job.process}")
            weights = ak.to_numpy(ak.fill_none(ak.firsts(events.info.weights), 1.0)).astype(np.float32)
            if keep_event:
                events, weights, n_tried, w_tried = _filtered(events, weights, keep_event(events), n)
                tried, sum_of_weights_tried = tried + n_tried, sum_of_weights_tried + w_tried
                n = len(events)
                if tried > MAX_TRIED_PER_EVENT * job.n_events + job.batch_size and done + n < job.n_events:
                    raise ConfigError(
                        f"process {job.process}: its filter ({event_filter.describe()}) kept {done + n} "
                        f"of {tried} events; loosen it or change the process settings"
                    )
                if n == 0:
                    continue
            truth = truth_from_events(events, particles)
            sum_of_weights += float(weights.astype(np.float64).sum())
            numbers = np.arange(job.first_event_number + done, job.first_event_number + done + n, dtype=np.int64)
            out = simulate_batch(
                rng,
                truth,
                weights,
                numbers,
                cfg,
                sets["events"] if "events" in writers else None,
                sets["jets"] if "jets" in writers else None,
                sel,
            )
            for key, writer in writers.items():
                writer.append(out[key])
            if "jets" in out:
                n_jets += len(out["jets"]["jets"])
            done += n
            if progress is not None:
                progress.put(n)
        info = pythia.infoPython()
        meta = {
            "dsid": job.dsid,
            "process": job.process,
            "cross_section_pb": float(info.sigmaGen() * PB_PER_MB),
            "cross_section_err_pb": float(info.sigmaErr() * PB_PER_MB),
            "filter_efficiency": 1.0,
            "k_factor": 1.0,
            "sqrt_s_tev": 13.6,
            "is_mc": True,
            "n_events": job.n_events,
            "sum_of_weights": sum_of_weights,
            "seed": job.seed,
            "generator": "Pythia 8.317 + TREASURE parametric ATLAS-like emulation",
        }
        if job.generator_cut:  # already in Pythia's phase space: sigmaGen refers to it, no efficiency to apply
            meta["generator_cut"] = job.generator_cut
        if keep_event:
            meta.update(
                {
                    "generator_filter": event_filter.describe(),
                    "n_events_tried": tried,
                    "filter_efficiency": sum_of_weights / sum_of_weights_tried,
                }
            )
        for writer in writers.values():
            writer.set_metadata(meta)
        for writer in writers.values():
            writer.close()
        loop_s = time.perf_counter() - t_loop
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    return {
        "process": job.process,
        "index": job.index,
        "events": job.n_events,
        "jets": n_jets,
        "cross_section_pb": meta["cross_section_pb"],
        "files": [p for p in (job.events_path, job.jets_path) if p],
        "pythia_init_s": init_s,
        "generation_s": loop_s,
    }


def plan_jobs(study: StudyParams, data: DataParams, generate: GenerateParams) -> list[Job]:
    """One job per (process, file index) of `generate.samples`; seeds from `generate.seed`, else the study's."""
    g = generate
    processes = load_processes(g["processes_file"])
    unknown = [p for p in g["samples"] if p not in processes]
    if unknown:
        raise ConfigError(
            f"generate.samples names unknown process(es) {unknown}; known in {g['processes_file']}: "
            f"{', '.join(processes)}"
        )
    seed = g["seed"] if g["seed"] is not None else study.seed
    out_dir = Path(g["output_dir"])
    jobs = []
    for process, n_total in g["samples"].items():
        if not n_total:
            continue
        block = processes[process]
        settings = tuple(g["pythia_common"]) + tuple(block["settings"])
        n_files = max(1, -(-int(n_total) // g["events_per_file"]))
        filt = filter_of_block(block, f"{g['processes_file']}: process '{process}'")
        for k in range(n_files):
            n = min(g["events_per_file"], int(n_total) - k * g["events_per_file"])
            stem = f"{process}_{k:03d}"
            jobs.append(
                Job(
                    process,
                    k,
                    n,
                    job_seed(seed, stem),
                    settings,
                    int(block.get("dsid", 0)),
                    str(out_dir / f"events_{stem}.h5") if "events" in g["layouts"] else None,
                    str(out_dir / f"jets_{stem}.h5") if "jets" in g["layouts"] else None,
                    g["batch_size"],
                    dict(g["detector"]),
                    data.objects_file,
                    dict(g["jet_selection"]),
                    k * g["events_per_file"],
                    g["gzip_level"],
                    str(block.get("generator_cut", "")),
                    None if filt is None else asdict(filt),
                )
            )
    return jobs


def _worker(args):
    job, queue = args
    return run_job(job, queue)


RECORD = "generate.json"  # in the output folder: {file name: the key of the job that wrote it}


def job_key(job: Job) -> str:
    """What a file's content depends on: the job (events, seed, settings, generator cut and filter, ...), every
    detector-emulation number (a new or changed default marks older files stale too) and the object definitions;
    not where the file goes."""
    from ..hashing import file_sha256, json_sha256

    spec = {k: v for k, v in asdict(job).items() if k not in ("events_path", "jets_path", "objects_file")}
    spec["detector"] = asdict(detector_config(job.detector))  # every emulation number, defaults included
    spec["objects_sha256"] = file_sha256(job.objects_file)
    return json_sha256(spec)


def job_outputs(job: Job) -> list[Path]:
    """The files a job writes (events and/or jets layout)."""
    return [Path(p) for p in (job.events_path, job.jets_path) if p]


def missing_jobs(study: StudyParams, data: DataParams, generate: GenerateParams) -> list[Job]:
    """The planned jobs whose files do not exist."""
    return [j for j in plan_jobs(study, data, generate) if not all(p.is_file() for p in job_outputs(j))]


def stale_files(study: StudyParams, data: DataParams, generate: GenerateParams) -> list[str]:
    """Files of the plan that exist but were written with other settings (or with no record of them)."""
    from ..runs import atomic

    record = atomic.read_json(Path(generate.output_dir) / RECORD, {}) or {}
    return [
        p.name
        for j in plan_jobs(study, data, generate)
        for p in job_outputs(j)
        if p.is_file() and record.get(p.name) != job_key(j)
    ]


def _remember(output_dir: str | Path, jobs: list[Job]) -> None:
    from ..runs import atomic

    out = Path(output_dir)
    with atomic.locked(out / f".{RECORD}.lock"):
        record = atomic.read_json(out / RECORD, {}) or {}
        record.update({p.name: job_key(j) for j in jobs for p in job_outputs(j)})
        atomic.write_json(out / RECORD, record)


def generate(
    study: StudyParams,
    data: DataParams,
    generate: GenerateParams,
    workers: int | None = None,
    progress: bool = True,
    only_missing: bool = False,
) -> list[dict]:
    """Run every job of the `generate` section (`only_missing`: only those whose files do not exist; files that exist
    are never rewritten then), in parallel; returns one summary per file (pair)."""
    sections = (study, data, generate)
    jobs = missing_jobs(*sections) if only_missing else plan_jobs(*sections)
    if only_missing and not jobs:
        return []
    if not jobs:
        raise ConfigError("generate.samples asks for no events")
    detector_config(generate.detector)  # fail early on a misspelt detector parameter
    workers = workers or generate.workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(jobs)))
    total = sum(j.n_events for j in jobs)
    t0 = time.perf_counter()
    bar = tqdm(total=total, unit="ev", desc="generate", disable=not shown(progress))
    if workers == 1:

        class _Bar:
            def put(self, n):
                bar.update(n)

        results = [run_job(j, _Bar()) for j in jobs]
    else:
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            queue = manager.Queue()
            with ctx.Pool(workers) as pool:
                pending = pool.map_async(_worker, [(j, queue) for j in jobs])
                while not pending.ready() or not queue.empty():
                    try:
                        bar.update(queue.get(timeout=0.2))
                    except Exception:  # queue.Empty: nothing reported in the last 0.2 s
                        pass
                results = pending.get()
    bar.close()
    _remember(generate.output_dir, jobs)
    log.info("generated %d events in %.1f s", total, time.perf_counter() - t0)
    return results
