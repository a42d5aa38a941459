"""Reading and writing safetensors checkpoints one tensor at a time.

Reading parses each shard's header (8-byte little-endian length + JSON) and reads a tensor's bytes
with ``os.preadv`` into a fresh buffer, so only the tensors being merged are in memory and nothing is
memory-mapped (mapped pages of big inputs would count in the process' resident set). The format is
the one documented at https://huggingface.co/docs/safetensors; ``safetensors.safe_open`` reads the
files this module writes (the tests check that).

Writing plans every shard up front (names, shapes and output dtype are known before any tensor is
merged), writes each shard's header first and then the tensor bytes in order as they are produced,
so the merged model is never held in memory either.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cmmerge.errors import MergeError, ModelError
from cmmerge.models import check_shard_names

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    file: Path
    start: int  # absolute byte offset in the file
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    @property
    def is_float(self) -> bool:
        return self.dtype.is_floating_point


def read_header(path: Path) -> tuple[dict[str, TensorInfo], dict]:
    """The tensors of one safetensors file (by name) and its ``__metadata__``."""
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > 100 * 2**20:
                raise ValueError("header larger than 100 MiB")
            header = json.loads(fh.read(length))
    except (OSError, ValueError, struct.error) as exc:
        raise MergeError(f"{path}: not a readable safetensors file ({exc})") from None
    data_start = 8 + length
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] not in DTYPES:
            raise MergeError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
        s, e = entry["data_offsets"]
        tensors[name] = TensorInfo(
            name, DTYPES[entry["dtype"]], tuple(entry["shape"]), path, data_start + s, data_start + e
        )
    return tensors, meta


def read_tensor(info: TensorInfo, fd: int, hasher: FileHasher | None = None) -> torch.Tensor:
    """Read one tensor (a fresh, writable tensor; nothing stays mapped)."""
    buf = torch.empty(info.nbytes, dtype=torch.uint8)
    view = memoryview(buf.numpy())
    done = 0
    while done < info.nbytes:
        n = os.preadv(fd, [view[done:]], info.start + done)
        if n <= 0:
            raise MergeError(f"{info.file}: truncated while reading tensor {info.name}")
        done += n
    if hasher is not None:
        hasher.feed(info.start, view)
    if info.nbytes == 0:
        return torch.empty(info.shape, dtype=info.dtype)
    return buf.view(info.dtype).reshape(info.shape)


class FileHasher:
    """SHA-256 of a file, fed with the bytes the merge reads anyway when they come in file order.

    Whatever was not fed in order (a tensor read out of order, an unread extra tensor) is hashed by
    re-reading the file at the end, so the digest is always the digest of the whole file.
    """

    def __init__(self, path: Path, header_bytes: int):
        self.path = path
        self.size = path.stat().st_size
        self._h = hashlib.sha256()
        with open(path, "rb") as fh:
            self._h.update(fh.read(header_bytes))
        self._pos = header_bytes
        self._in_order = True

    def feed(self, offset: int, data) -> None:
        if self._in_order and offset == self._pos:
            self._h.update(data)
            self._pos += len(data)
        elif offset >= self._pos:
            self._in_order = False

    def hexdigest(self) -> str:
        if self._in_order and self._pos == self.size:
            return self._h.hexdigest()
        if self._in_order:  # hash the unread tail
            with open(self.path, "rb") as fh:
                fh.seek(self._pos)
                while chunk := fh.read(1 << 24):
                    self._h.update(chunk)
            self._pos = self.size
            return self._h.hexdigest()
        h = hashlib.sha256()
        with open(self.path, "rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
        return h.hexdigest()


@dataclass
class Checkpoint:
    """A ``save_pretrained`` folder: its config and the tensors of all its safetensors shards."""

    folder: Path
    config: dict
    tensors: dict[str, TensorInfo]
    files: list[Path]
    _fds: dict[Path, int] = field(default_factory=dict, repr=False)
    _hashers: dict[Path, FileHasher] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, folder: str | os.PathLike, label: str) -> Checkpoint:
        folder = Path(folder)
        config_path = folder / "config.json"
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MergeError(f"model '{label}': {config_path} not found (expected a save_pretrained folder)") from None
        except json.JSONDecodeError as exc:
            raise MergeError(f"model '{label}': {config_path} is not valid JSON ({exc.msg})") from None
        files = safetensors_files(folder, label)
        tensors: dict[str, TensorInfo] = {}
        for f in files:
            found, _ = read_header(f)
            for name, info in found.items():
                if name in tensors:
                    raise MergeError(
                        f"model '{label}': tensor {name} is in two shards ({tensors[name].file.name}, {f.name})"
                    )
                tensors[name] = info
        return cls(folder, config, tensors, files)

    def read(self, name: str) -> torch.Tensor:
        info = self.tensors[name]
        fd = self._fds.get(info.file)
        if fd is None:
            fd = self._fds[info.file] = os.open(info.file, os.O_RDONLY)
            with open(info.file, "rb") as fh:
                header_bytes = 8 + struct.unpack("<Q", fh.read(8))[0]
            self._hashers[info.file] = FileHasher(info.file, header_bytes)
        return read_tensor(info, fd, self._hashers[info.file])

    def digests(self) -> dict[str, str]:
        """``{file name: sha256}`` for every shard (files never read are hashed here)."""
        out = {}
        for f in self.files:
            if f not in self._hashers:
                with open(f, "rb") as fh:
                    header_bytes = 8 + struct.unpack("<Q", fh.read(8))[0]
                self._hashers[f] = FileHasher(f, header_bytes)
            out[f.name] = self._hashers[f].hexdigest()
        return out

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def safetensors_files(folder: Path, label: str) -> list[Path]:
    index = folder / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError):
            raise MergeError(f"model '{label}': {index} is not a safetensors index (no weight_map)") from None
        try:  # every shard must be a file inside the model folder: no '../other', no absolute path, no escaping link
            check_shard_names(folder, weight_map, f"model '{label}'")
        except ModelError as exc:
            raise MergeError(str(exc)) from None
        files = sorted({folder / f for f in weight_map.values()})
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise MergeError(f"model '{label}': shard(s) listed in {INDEX_FILE} are missing: {', '.join(missing)}")
        return files
    if (folder / SINGLE_FILE).is_file():
        return [folder / SINGLE_FILE]
    found = sorted(folder.glob("*.safetensors"))
    if found:
        return found
    raise MergeError(
        f"model '{label}': no safetensors weights in {folder} (pickle .bin checkpoints are not read; "
        "re-save with save_pretrained(safe_serialization=True))"
    )


# --- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutSpec:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * self.dtype.itemsize


class ShardedWriter:
    """Write tensors, in the planned order, into safetensors shards whose headers are written first.

    ``specs`` fixes the order and the shard boundaries (a new shard starts when the next tensor would
    push the current one past ``max_shard_bytes``). With one shard the file is ``model.safetensors``,
    else ``model-0000i-of-0000n.safetensors`` plus ``model.safetensors.index.json``, the layout that
    ``from_pretrained`` reads.
    """

    def __init__(self, folder: Path, specs: list[OutSpec], max_shard_bytes: int):
        self.folder = folder
        shards: list[list[OutSpec]] = [[]]
        size = 0
        for spec in specs:
            if shards[-1] and size + spec.nbytes > max_shard_bytes:
                shards.append([])
                size = 0
            shards[-1].append(spec)
            size += spec.nbytes
        n = len(shards)
        self.names = [SINGLE_FILE] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        self._plan = [(spec, shard) for shard, group in enumerate(shards) for spec in group]
        self._shards = shards
        self._next = 0
        self._fh = None
        self._shard = -1
        self.total_size = sum(s.nbytes for s in specs)

    def _open_shard(self, shard: int) -> None:
        if self._fh is not None:
            self._fh.close()
        header: dict = {"__metadata__": {"format": "pt"}}
        offset = 0
        for spec in self._shards[shard]:
            header[spec.name] = {
                "dtype": DTYPE_NAMES[spec.dtype],
                "shape": list(spec.shape),
                "data_offsets": [offset, offset + spec.nbytes],
            }
            offset += spec.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the data start is 8-byte aligned, as safetensors writes it
        self._fh = open(self.folder / self.names[shard], "wb")  # noqa: SIM115 - closed in close()/next shard
        self._fh.write(struct.pack("<Q", len(raw)))
        self._fh.write(raw)
        self._shard = shard

    def write(self, name: str, tensor: torch.Tensor) -> None:
        spec, shard = self._plan[self._next]
        if name != spec.name:
            raise RuntimeError(f"writer expected tensor {spec.name}, got {name}")  # engine bug
        if tuple(tensor.shape) != spec.shape or tensor.dtype != spec.dtype:
            raise RuntimeError(f"{name}: planned {spec.shape} {spec.dtype}, got {tuple(tensor.shape)} {tensor.dtype}")
        if shard != self._shard:
            self._open_shard(shard)
        if spec.nbytes:
            data = tensor.contiguous().reshape(-1).view(torch.uint8).numpy()
            self._fh.write(memoryview(data))
        self._next += 1

    def close(self) -> list[str]:
        if self._next != len(self._plan):
            raise RuntimeError(f"writer closed after {self._next} of {len(self._plan)} tensors")
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if len(self.names) > 1:
            weight_map = {spec.name: self.names[shard] for spec, shard in self._plan}
            index = {"metadata": {"total_size": self.total_size}, "weight_map": weight_map}
            (self.folder / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return self.names
