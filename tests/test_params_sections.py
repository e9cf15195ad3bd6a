"""Functions take the params sections they need: the whole params set travels only in the config layer (which
builds it) and the run folder (which records it). A function that took it could read any key, and nothing but
convention would say which stage depends on which part of the params."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import treasure_lib

#: Where the whole params may be a parameter, and why.
HOLDERS = {
    "treasure_lib.config": "declares, types, builds, validates and writes the params (schema, sections, rules)",
    "treasure_lib.runs.folder.Run.__init__": "a run folder records the params it was opened with",
    "treasure_lib.runs.provenance.params_hash": "the params' identity: a hash of the whole resolved set",
    "treasure_lib.runs.provenance.collect": "a run's provenance records its params' identity",
    "treasure_lib.runs.chapters.input_hashes": "a chapter's inputs hash chains the params' identity",
    "treasure_lib.scan.points.Point.__init__": "a scan point records the params it runs with",
    "treasure_lib.scan.points.point_hash": "a scan point's identity: a hash of its resolved set",
    "treasure_lib.distributed.fit_here_or_distributed": "hands the whole set to the torchrun processes it starts",
}
#: Names under which the whole set would travel.
WHOLE = ("params", "resolved")


def _modules():
    for info in pkgutil.walk_packages(treasure_lib.__path__, "treasure_lib."):
        yield importlib.import_module(info.name)


def _functions(module):
    for name, obj in vars(module).items():
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            yield f"{module.__name__}.{name}", obj
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            for attr, member in vars(obj).items():
                func = getattr(member, "__func__", member)
                if inspect.isfunction(func):
                    yield f"{module.__name__}.{name}.{attr}", func


def _takes_whole_params(func) -> list[str]:
    found = []
    for p in inspect.signature(func).parameters.values():
        annotation = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        annotation = annotation.strip("'\"")
        if p.name in WHOLE or annotation in ("Params", "config.Params"):
            found.append(p.name)
    return found


def test_no_function_outside_the_config_layer_takes_the_whole_params():
    offenders = []
    for module in _modules():
        for qualname, func in _functions(module):
            if any(qualname == h or qualname.startswith(h + ".") for h in HOLDERS):
                continue
            if _takes_whole_params(func):
                offenders.append(qualname)
    assert offenders == [], "take the sections these need (e.g. `classify: ClassifyParams`):\n" + "\n".join(offenders)


def test_the_walk_sees_a_function_that_takes_the_whole_params():
    def bad(params, x):  # what the test above must catch
        return params, x

    def typed(settings: "Params"):  # noqa: F821, UP037  (the annotation is only read as text)
        return settings

    def renamed(resolved):
        return resolved

    assert _takes_whole_params(bad) == ["params"] and _takes_whole_params(typed) == ["settings"]
    assert _takes_whole_params(renamed) == ["resolved"]
