"""Where a tensor sits in a transformer: which block, or the embeddings, or the rest.

The block index is read from tensor names generically: the *block container* is the dotted prefix
followed by an integer segment (``bert.encoder.layer.`` + ``3`` + ``.attention…``,
``model.layers.`` + ``3`` + ``.mlp…``, ``transformer.h.`` + ``3`` …) that has the most distinct
indices among all names. That covers BERT, XLM-R, Llama, GPT-2, GPT-NeoX and Mistral layouts, and
checkpoints saved with or without the ``base_model_prefix``, without a table of architectures.

Tensors outside the blocks are *embeddings* when their name contains ``embed`` (word, position and
token-type embeddings and their LayerNorm in BERT) and *other* otherwise (final norm, pooler, LM or
classification head).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Part = Literal["block", "embeddings", "other"]
_INDEXED = re.compile(r"^(?P<prefix>(?:[^.]+\.)*?[^.]+\.)(?P<index>\d+)\.")


@dataclass(frozen=True)
class BlockLayout:
    """The block container (``prefix``) and the number of blocks found under it."""

    prefix: str | None
    num_blocks: int

    @classmethod
    def detect(cls, names: Iterable[str]) -> BlockLayout:
        indices: dict[str, set[int]] = defaultdict(set)
        for name in names:
            m = _INDEXED.match(name)
            if m:
                indices[m["prefix"]].add(int(m["index"]))
        if not indices:
            return cls(prefix=None, num_blocks=0)
        prefix = max(sorted(indices), key=lambda p: len(indices[p]))
        return cls(prefix=prefix, num_blocks=max(indices[prefix]) + 1)

    def block_index(self, name: str) -> int | None:
        """The block number of ``name``, or ``None`` for a tensor outside the blocks."""
        if self.prefix is None or not name.startswith(self.prefix):
            return None
        head = name[len(self.prefix) :].split(".", 1)[0]
        return int(head) if head.isdigit() else None

    def part(self, name: str) -> Part:
        if self.block_index(name) is not None:
            return "block"
        return "embeddings" if "embed" in name else "other"

    def resolve(self, index: int) -> int | None:
        """The block a config's block number names in this layout (see :func:`resolve_block`)."""
        return resolve_block(index, self.num_blocks)


def resolve_block(index: int, num_blocks: int) -> int | None:
    """The block that block number ``index`` names among ``num_blocks``, or ``None`` if there is no such block.

    Configs count blocks Python-style (``-1`` is the top block), so that "revert the top two blocks" reads the
    same for a 12- and a 24-block model. Every reader of a block number (reverting and its plan check here,
    freezing in training) goes through this one function, so they cannot disagree on what ``-1`` or an
    out-of-range number means; ``None`` lets each caller word its own error.
    """
    resolved = index + num_blocks if index < 0 else index
    return resolved if 0 <= resolved < num_blocks else None
