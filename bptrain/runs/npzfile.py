"""Untrusted .npz archives: the zip directory and every member's .npy header are checked before any array is read.

`NpzReader(path, max_bytes)` lists each array's dtype and shape from the headers alone. It refuses
Python objects and unknown dtypes, a header whose shape disagrees with the member's size in the
zip directory, and an archive claiming more than `max_bytes` of arrays, more than MAX_MEMBERS
arrays, or a metadata string (META_KEY, the only text member) over MAX_META_BYTES. `read(name)`
then reads one array at a time; an array never grows past the size its header declared, so
nothing is decompressed without bound.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bptrain.errors import ModelFileError
from bptrain.interrupts import held

META_KEY = "__meta__"  # the one member that is text: the metadata JSON
MAX_MEMBERS = 10_000
MAX_META_BYTES = 64 * 2**20
ARRAY_DTYPES = {np.dtype(t).str: t for t in ("float32", "float64", "int32", "int64")}
NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class Header:
    """One member as its .npy header describes it."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    info: zipfile.ZipInfo

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def unusable(path: Path, why: str) -> ModelFileError:
    """The error for a file that is not a bptrain file's archive, or is a damaged one."""
    error = ModelFileError(f"{path}: not a bptrain model file, or a damaged one ({why}); was it written by bptrain fit?")
    error.damage = f"the file is damaged ({why})"  # how a checkpoint's fallback names it
    return error


def too_large(path: Path, what: str, claimed: int, cap: int) -> ModelFileError:
    error = ModelFileError(
        f"{path}: {what} {claimed} bytes, over bptrain's limit of {cap} bytes ({cap / 2**30:g} GiB); "
        "the file was not read. Only files written by bptrain fit within the limits load"
    )
    error.damage = f"{what} {claimed} bytes, over the limit of {cap}"
    return error


class NpzReader:
    """An open .npz whose members are all checked; use as a context manager."""

    def __init__(self, path: Path, max_bytes: int):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            if f.read(len(NPY_MAGIC)) == NPY_MAGIC:
                raise ModelFileError(f"{self.path}: not a bptrain model file (a bare .npy array, not an .npz archive)")
        with held():  # a ZipFile stopped inside its __init__ prints an AttributeError when collected
            self._zip = zipfile.ZipFile(self.path)
        try:
            self.headers = self._headers(max_bytes)
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> "NpzReader":
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    def _headers(self, max_bytes: int) -> dict[str, Header]:
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise unusable(self.path, f"{len(infos)} members, more than the {MAX_MEMBERS} bptrain reads")
        headers: dict[str, Header] = {}
        for info in infos:
            header = self._header(info)
            if header.name in headers:
                raise unusable(self.path, f"two arrays named {header.name!r}")
            headers[header.name] = header
        total = sum(h.nbytes for name, h in headers.items() if name != META_KEY)
        if total > max_bytes:
            raise too_large(self.path, "the arrays claim", total, max_bytes)
        return headers

    def _header(self, info: zipfile.ZipInfo) -> Header:
        """The member's .npy header, checked: a known dtype, and a size that matches the zip directory."""
        if not info.filename.endswith(".npy") or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise unusable(self.path, f"member {info.filename!r} is not a plain .npy array")
        name = info.filename[: -len(".npy")]
        with self._zip.open(info) as f:
            try:
                version = np.lib.format.read_magic(f)
                read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read is None:
                    raise ValueError(f".npy format version {version}")
                shape, fortran_order, dtype = read(f)
            except (ValueError, tokenize.TokenError) as e:  # numpy tokenizes a header it cannot evaluate, which may fail too
                raise unusable(self.path, f"array {name!r} has no readable .npy header: {e}") from None
            offset = f.tell()
        if dtype.hasobject:
            raise unusable(self.path, f"array {name!r} holds Python objects, which bptrain never loads")
        header = Header(name, tuple(shape), dtype, fortran_order, info)
        if name == META_KEY:
            if dtype.kind != "U" or shape != () or header.nbytes > MAX_META_BYTES:
                raise unusable(self.path, f"{name!r} is not one text string of at most {MAX_META_BYTES} bytes (dtype {dtype}, shape {shape})")
        elif dtype.str not in ARRAY_DTYPES:
            raise unusable(self.path, f"array {name!r} has dtype {dtype}; bptrain files hold only {', '.join(ARRAY_DTYPES.values())}")
        if offset + header.nbytes != info.file_size:
            raise unusable(
                self.path,
                f"array {name!r}: its header claims shape {shape} ({header.nbytes} bytes), but the archive holds {info.file_size - offset} bytes",
            )
        return header

    def read(self, name: str) -> np.ndarray:
        """One array, read from the archive only now; its header was checked when the archive was opened."""
        with self._zip.open(self.headers[name].info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
