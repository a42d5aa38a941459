"""Model merging: pure merge methods over tensors, a registry of them, and a streaming engine.

    from cmmerge.merge import MergeConfig, run_merge
    cfg = MergeConfig.from_yaml("merge.yaml")  # or .from_dict({...}, where="params.yaml: merge")
    run_merge(cfg, "models/merged")  # atomic; checkpoint + config + tokenizer + manifest
    run_merge(cfg.resolve("merge.yaml"), "models/merged")  # the same, with messages that name the file

See ``docs/merge.md`` for the config format, the methods (formulas, references) and the policies.
"""

from cmmerge.merge.config import MergeConfig, ModelSpec, ResolvedMerge
from cmmerge.merge.engine import MANIFEST, run_merge
from cmmerge.merge.registry import MergeMethod, TensorJob, available, get_method, register

__all__ = [
    "MANIFEST",
    "MergeConfig",
    "MergeMethod",
    "ModelSpec",
    "ResolvedMerge",
    "TensorJob",
    "available",
    "get_method",
    "register",
    "run_merge",
]
