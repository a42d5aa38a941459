"""``cmmerge merge CONFIG.yaml OUT_DIR``: the merge engine as a subcommand.

The top-level ``cmmerge`` command calls :func:`register` with its argparse subparsers; the
subcommand's handler runs under :func:`cmmerge.runner.run_main`'s error handling there.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``merge`` subcommand to an ``argparse`` subparsers object."""
    from cmmerge.merge.registry import available

    parser = subparsers.add_parser(
        "merge",
        help="merge checkpoints (or adapters) as a YAML config says",
        description="Merge checkpoints tensor by tensor (methods: " + ", ".join(available()) + "). "
        "The output folder is written atomically: it appears complete or not at all.",
    )
    parser.add_argument("config", help="merge config (YAML): merge_method, base_model, models, parameters …")
    parser.add_argument(
        "out_dir",
        help="output folder: created, or replaced if cmmerge wrote it (a folder with merge_manifest.json); "
        "never an input, a folder holding an input, '.' or '/'",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace OUT_DIR even if it is a non-empty folder cmmerge did not write"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from cmmerge.merge import MergeConfig, run_merge

    # resolved under the file's name, so that errors about its checkpoints name the file too
    merge = MergeConfig.from_yaml(args.config).resolve(str(args.config))
    run_merge(merge, args.out_dir, force=args.force, inputs=(args.config,))
