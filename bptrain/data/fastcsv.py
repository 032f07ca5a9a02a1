"""The fast way to read a plain numeric CSV file on disk: pyarrow's parser on both halves of the file at once, taken only where it gives the frame pandas' parser gives.

`read_numeric` returns the frame, or None for anything but a file that is ASCII, unquoted, with
every row as wide as the header, every column int64 or float64 (the types, and the values, of its
first rows as pandas reads them) and no infinity or spelled-out NaN: the caller then reads the
file the ordinary way (bptrain.data.reading), whose checks and messages stay the only ones.
Nothing here raises for a bad file.

The body is cut at a line end into WORKERS ranges, each parsed by a thread of its own, CHUNK_BYTES
of whole lines at a time: pyarrow's parser lets go of the GIL, so the threads use two cores.
pyarrow's own thread pool stays off (a process that leaves while that pool is still at work may
abort, apache/arrow#34314; not seen here in 150 runs, but these threads are joined before the
frame is made, so nothing of the reading outlives it). The float columns go GROUP_COLUMNS at a time
into column-major arrays whose columns the frame's columns are (no copy), so the values are held
once, and a group's memory goes back as soon as its columns are dropped (bptrain.data.columns.Dropping).
A caller that uses the frame up (the split of a training file) may keep rows in those arrays
instead of new ones: `own_columns` hands them over, once.
"""

from __future__ import annotations

import io
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bptrain import lazy

pd = lazy.module("pandas")  # imported on first use (bptrain.lazy): predict on a plain CSV file needs none of it

from bptrain.data.columns import give_back_memory

WORKERS = 2  # threads, each parsing its share of the file
CHUNK_BYTES = 4 << 20  # of whole lines, parsed at a time by one thread
SAMPLE_BYTES = 1 << 20  # of rows, to take the column types from
GROUP_COLUMNS = 64  # float columns held in one array: what a Dropping lets go of at once
NA_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
             "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")  # pandas' default missing-value spellings; all but the empty one hold an N or an n


_OWN: dict[int, tuple[weakref.ref, int, dict[str, tuple[weakref.ref, int]]]] = {}  # by id() of the frame, while it lives


def own_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The float columns of `frame`, when read_numeric made it, as the writeable arrays they were
    made in, which nothing outside the frame holds: a caller that uses the frame up may keep rows
    in them instead of new arrays. Given once; empty for any other frame."""
    ref, rows, places = _OWN.pop(id(frame), (None, 0, {}))
    if ref is None or ref() is not frame:
        return {}
    live = {name: (group(), k) for name, (group, k) in places.items()}
    return {name: array[:rows, k] for name, (array, k) in live.items() if array is not None}


def _owned(frame: pd.DataFrame, rows: int, places: dict[str, tuple[np.ndarray, int]]) -> None:
    """Remember where `frame`'s float columns live: (group, column) each. Weakly: a group whose
    columns were all dropped from the frame goes, and the entry goes with the frame."""
    _OWN[id(frame)] = (weakref.ref(frame), rows, {name: (weakref.ref(group), k) for name, (group, k) in places.items()})
    weakref.finalize(frame, _OWN.pop, id(frame), None)


def available() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


class _Declined(Exception):
    """The file is not one this reader can be sure of."""


def read_numeric(path: Path, header: list[str], body_start: int, delimiter: str, max_line: int) -> pd.DataFrame | None:
    """The file's rows as pandas would read them, or None when that is not certain.

    `header` holds the column names as written, the header record ending at byte `body_start`;
    a line longer than `max_line` bytes leaves the file to the ordinary reader (which names it).
    """
    if not available() or not header or not all(header):
        return None
    import pyarrow as pa

    try:
        reader = _Reader.open(path, header, body_start, delimiter, max_line)
        return None if reader is None else reader.frame()
    except (_Declined, pa.ArrowException, OSError, ValueError):  # a row of the wrong width, a value that does not fit its column's type
        return None
    finally:
        # What the chunks took, back to the system once, at the end: handing it back after every
        # chunk saved 25 MB of the peak, but cost 1.3 s of system time on L.csv (the next chunk
        # faulting the same pages in again: 450,000 page faults against 185,000).
        pa.default_memory_pool().release_unused()
        give_back_memory()


@dataclass
class _Range:
    """One thread's share of the body: bytes [start, end), its line count, and its rows once parsed."""

    start: int
    end: int
    lines: int = 0
    rows: int = 0
    ints: list[list[np.ndarray]] = field(default_factory=list)  # per chunk, the integer columns' values


@dataclass
class _Reader:
    path: Path
    names: list[str]
    types: list  # pyarrow types, int64 or float64, of the columns
    delimiter: str
    max_line: int
    ranges: list[_Range]
    sample: bytes = b""  # the first rows, and pyarrow's reading of them
    sample_table: object = None
    stop: threading.Event = field(default_factory=threading.Event)  # set: the parsing threads give up at their next chunk

    @classmethod
    def open(cls, path: Path, header: list[str], body_start: int, delimiter: str, max_line: int) -> "_Reader | None":
        """The reader of the file, with the column types pyarrow gives its first rows, or None when
        they are not all int64 or float64 (whether pandas reads those rows alike, `frame` checks)."""
        import pyarrow as pa

        with open(path, "rb") as f:
            f.seek(body_start)
            sample = f.read(SAMPLE_BYTES)
        sample = sample[: sample.rfind(b"\n") + 1]
        if not sample:
            return None
        table = _parse(sample, *_options(header, delimiter, None))
        if not all(pa.types.is_int64(t) or pa.types.is_float64(t) for t in table.schema.types):
            return None
        reader = cls(path, header, list(table.schema.types), delimiter, max_line, _ranges(path, body_start, max_line))
        reader.sample, reader.sample_table = sample, table
        return reader

    @property
    def floats(self) -> list[int]:
        """The float64 columns, by position (the others are int64)."""
        import pyarrow as pa

        return [i for i, t in enumerate(self.types) if pa.types.is_float64(t)]

    def frame(self) -> pd.DataFrame | None:
        """The file's rows, or None when pandas reads its first rows otherwise. The file is parsed on
        WORKERS threads while this one imports pandas and compares the first rows (about half a
        second on L.csv that the parse no longer waits for); a mismatch stops the parse."""
        with ThreadPoolExecutor(1) as lead:  # its thread and the parsing ones have ended when the with-block does
            parsing = lead.submit(self._parse_all)
            try:
                same = _same_in_pandas(self.sample_table, self.sample, self.names, self.delimiter)
            except BaseException:  # an interrupt: the threads stop at their next chunk
                self.stop.set()
                raise
            if not same:
                self.stop.set()
                return None
            groups, rows, ints = parsing.result()
        places = {self.names[i]: (groups[k // GROUP_COLUMNS], k % GROUP_COLUMNS) for k, i in enumerate(self.floats)}
        columns = {name: group[:rows, k] for name, (group, k) in places.items()}
        for name, parts in ints.items():
            if any(p.dtype != np.int64 for p in parts):  # an integer column with missing values: float64 with NaN, as pandas makes it
                parts = [p.astype(np.float64) for p in parts]
            columns[name] = np.concatenate(parts) if parts else np.empty(0, np.int64)
        frame = pd.DataFrame({name: columns[name] for name in self.names}, copy=False)
        _owned(frame, rows, places)
        return frame

    def _parse_all(self) -> tuple[list[np.ndarray], int, dict[str, list[np.ndarray]]]:
        """Every range parsed, each on a thread of its own: the float columns' groups, the rows, and
        each integer column's values, chunk by chunk."""
        floats = self.floats
        ints = sorted(set(range(len(self.types))) - set(floats))
        with ThreadPoolExecutor(WORKERS) as pool:  # the threads have ended when the with-block does
            list(pool.map(self._count, self.ranges))
            capacity = sum(r.lines for r in self.ranges)
            groups = [np.empty((capacity, len(floats[at : at + GROUP_COLUMNS])), order="F") for at in range(0, len(floats), GROUP_COLUMNS)]
            starts = np.cumsum([0] + [r.lines for r in self.ranges[:-1]])
            list(pool.map(lambda r, at: self._fill(r, int(at), groups, floats, ints), self.ranges, starts))
        rows = self._close_gaps(groups, starts)
        return groups, rows, {self.names[i]: [chunk[k] for r in self.ranges for chunk in r.ints] for k, i in enumerate(ints)}

    def _count(self, part: _Range) -> None:
        """The lines of `part`, after checking that none is longer than max_line bytes; _Declined if
        one is. (Their bytes are checked as they are parsed, by _whole_lines.)"""
        line = 0  # bytes since the last line end
        size = min(CHUNK_BYTES, self.max_line)  # a line wholly inside a block is then never too long
        buffer = bytearray(size)  # read into again and again: new blocks would cost a page fault per page
        ends = np.empty(size, bool)  # which bytes of the block are line ends
        with open(self.path, "rb") as f, memoryview(buffer) as view:
            f.seek(part.start)
            left = part.end - part.start
            while left > 0:
                if self.stop.is_set():
                    raise _Declined
                n = f.readinto(view[: min(size, left)])
                if not n:
                    break
                left -= n
                end = buffer.find(b"\n", 0, n)
                if line + (end if end >= 0 else n) > self.max_line:
                    raise _Declined
                line = n - buffer.rfind(b"\n", 0, n) - 1 if end >= 0 else line + n
                # numpy compares many bytes at once, without the GIL, where bytes.count goes
                # byte by byte and holds it (while the main thread imports pandas)
                np.equal(np.frombuffer(buffer, np.uint8, n), ord("\n"), out=ends[:n])
                part.lines += int(np.count_nonzero(ends[:n]))
        part.lines += line > 0  # a last line without a line end

    def _fill(self, part: _Range, at: int, groups: list[np.ndarray], floats: list[int], ints: list[int]) -> None:
        """Parse `part` into rows `at`... of `groups` (the float columns) and part.ints."""
        options = {nulls: _options(self.names, self.delimiter, self.types, nulls) for nulls in (("",), NA_VALUES)}
        row = at
        for chunk, spelled in _whole_lines(self.path, part.start, part.end):
            if self.stop.is_set():
                raise _Declined
            # Looking for the spelled-out missing values costs pyarrow's parser about a third of its
            # time on a file of numbers (105 against 145 MB/s per core on L.csv); a chunk without an
            # N or an n can hold only the empty one.
            table = _parse(chunk, *options[NA_VALUES if spelled else ("",)])
            del chunk
            n = table.num_rows
            if row + n > at + part.lines:
                raise _Declined
            if floats:
                # every float column of a batch in one column-major block, then each group's columns
                # from it: a call per group, and reading each column's null count, took four times as long
                at_batch = row
                for batch in table.select(floats).to_batches():
                    values = np.asarray(batch.to_tensor(null_to_nan=True, row_major=False))
                    for g, group in enumerate(groups):
                        group[at_batch : at_batch + batch.num_rows] = values[:, g * GROUP_COLUMNS : (g + 1) * GROUP_COLUMNS]
                    at_batch += batch.num_rows
                    del values
                if not _only_gaps(groups, row, row + n, lambda t=table: sum(t.column(i).null_count for i in floats)):
                    raise _Declined
            part.ints.append([_integers(table.column(i)) for i in ints])
            row += n
            del table
        part.rows = row - at

    def _close_gaps(self, groups: list[np.ndarray], starts: np.ndarray) -> int:
        """Move each range's rows up to follow the previous range's (blank lines are lines without
        rows); the number of rows."""
        rows = 0
        for part, start in zip(self.ranges, starts):
            if rows != start:
                for group in groups:
                    group[rows : rows + part.rows] = group[start : start + part.rows]
            rows += part.rows
        return rows


def _whole_lines(path: Path, start: int, end: int):
    """Bytes [start, end) of the file as views of whole lines, about CHUNK_BYTES each (the last may
    lack its line end), read into one buffer again and again, each with whether it may spell out a
    missing value (it holds an N or an n); a view is valid until the next. _Declined for bytes
    _check_plain refuses."""
    buffer = bytearray(CHUNK_BYTES)
    have, left = 0, end - start  # bytes held in the buffer, and still to read
    with open(path, "rb") as f:
        f.seek(start)
        while left > 0 or have:
            if have == len(buffer):  # a line longer than the buffer: a new one, twice as large
                buffer = buffer + bytes(len(buffer))
            with memoryview(buffer) as view:
                n = f.readinto(view[have : have + min(len(buffer) - have, left)]) if left > 0 else 0
                if left > 0 and not n:
                    raise _Declined  # the file changed while being read
                left -= n
                have += n
                cut = buffer.rfind(b"\n", 0, have) + 1 if left > 0 else have
                if cut:
                    _check_plain(buffer, view, cut)
                    yield view[:cut], buffer.find(b"N", 0, cut) >= 0 or buffer.find(b"n", 0, cut) >= 0
            buffer[: have - cut] = buffer[cut:have]
            have -= cut


def _check_plain(buffer: bytearray, view: memoryview, end: int) -> None:
    """_Declined unless bytes [0, end) of `buffer` (whole lines) are ASCII, without quotes, with \\r
    only in \\r\\n."""
    if np.frombuffer(view[:end], dtype=np.uint8).max(initial=0) >= 0x80 or buffer.find(b'"', 0, end) >= 0:
        raise _Declined
    if buffer.find(b"\r", 0, end) >= 0 and buffer.count(b"\r", 0, end) != buffer.count(b"\r\n", 0, end):
        raise _Declined


def _ranges(path: Path, body_start: int, max_line: int) -> list[_Range]:
    """The body cut at line ends into up to WORKERS ranges of about equal size."""
    size = path.stat().st_size
    cuts = [body_start]
    with open(path, "rb") as f:
        for k in range(1, WORKERS):
            at = max(cuts[-1], body_start + (size - body_start) * k // WORKERS)
            f.seek(at)
            end = f.read(min(max_line + 1, CHUNK_BYTES)).find(b"\n")
            if end >= 0:
                cuts.append(at + end + 1)
    cuts.append(size)
    return [_Range(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _options(names: list[str], delimiter: str, types: list | None, nulls: tuple[str, ...] = NA_VALUES):
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char=False, double_quote=False, newlines_in_values=False)
    convert = pacsv.ConvertOptions(
        null_values=list(nulls), strings_can_be_null=False, true_values=[], false_values=[],
        column_types=None if types is None else dict(zip(names, types)),
    )
    return names, parse, convert


def _parse(data: bytes, names: list[str], parse, convert):
    """pyarrow's table of the CSV lines `data`, parsed on this thread."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(column_names=names, use_threads=False, block_size=max(len(data) + 1, 1 << 20))
    return pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(data)), read_options=read, parse_options=parse, convert_options=convert
    )


def _integers(column) -> np.ndarray:
    """An int64 column as pandas reads it: int64, or float64 with NaN when values are missing.

    Not ChunkedArray.to_numpy(): its way to numpy imports pandas, so the parsing threads would
    wait, at their first chunk, for the import that the comparison with pandas runs beside them.
    """
    import pyarrow as pa

    array = column.combine_chunks()
    if array.null_count:
        return np.asarray(pa.RecordBatch.from_arrays([array], ["values"]).to_tensor(null_to_nan=True)).ravel()
    if not len(array):
        return np.empty(0, np.int64)
    return np.frombuffer(array.buffers()[1], np.int64, len(array), array.offset * np.dtype(np.int64).itemsize)


def _same_in_pandas(table, sample: bytes, header: list[str], delimiter: str) -> bool:
    """Whether pandas reads `sample` (whose reading by pyarrow is `table`) to the same types and values."""
    import pyarrow as pa

    try:
        theirs = pd.read_csv(io.BytesIO(sample), sep=delimiter, header=None, names=header, index_col=False)
    except Exception:  # pandas' parser errors are many types: any of them means "not sure"
        return False
    for name, column in zip(table.column_names, table.columns):
        ours = _integers(column) if pa.types.is_int64(column.type) else column.to_numpy()
        if not (_identical(ours, theirs[name].to_numpy()) and only_gaps(ours, column.null_count)):
            return False
    return True


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))


def _only_gaps(groups: list[np.ndarray], start: int, stop: int, missing: Callable[[], int]) -> bool:
    """Whether the values not finite in rows [start, stop) of `groups` are the `missing()` ones (NaN),
    counted only when some are not finite."""
    gaps = [_gaps(group[start:stop]) for group in groups]
    return None not in gaps and (sum(gaps) == 0 or sum(gaps) == missing())


def only_gaps(values: np.ndarray, missing: int) -> bool:
    """Whether every value that is not finite is a missing one (NaN)."""
    if values.dtype != np.float64:
        return True
    gaps = _gaps(values)
    return gaps == 0 or gaps == missing


def _gaps(values: np.ndarray) -> int | None:
    """How many of the float values are NaN; None when one is infinite."""
    finite = np.isfinite(values)
    if finite.all():
        return 0
    return None if np.isinf(values).any() else values.size - int(finite.sum())
