"""Realistic ATLAS-style samples: Pythia 8 + FastJet + a parametric ATLAS-like detector."""

from .run import generate, load_processes, plan_jobs, run_job  # noqa: F401
