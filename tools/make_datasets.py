#!/usr/bin/env python
"""Regenerate the small example CSV datasets in ``datasets/``.

The data come only from files bundled inside two installed packages, so
nothing is downloaded:

* scikit-learn  -- iris, wine, breast_cancer, digits, diabetes
  (``sklearn.datasets.load_*`` read CSV files shipped in ``sklearn/datasets/data``)
* palmerpenguins -- penguins (``load_penguins`` reads the shipped ``penguins.csv``)

Neither package is a runtime dependency of bptrain; install them only to run
this script::

    pip install scikit-learn palmerpenguins
    python tools/make_datasets.py            # (re)write datasets/*.csv
    python tools/make_datasets.py --check    # regenerate in a temp dir, compare bytes

Output is deterministic: rows keep the source order, the CSV has a header and
no index, LF line endings, UTF-8.  Floats are written as Python's shortest
round-trip ``repr`` (5.1 stays ``5.1``; re-reading gives the identical
float64), with whole numbers written as "16" or "16.0" following the source
file's own convention; feature columns whose values are all whole numbers
(pixel intensities, wine magnesium/proline, diabetes age/sex/s1/s6, penguin
flipper length/body mass/year) are written as integers.  Every feature cell
therefore has the same text as in the bundled source file.  Missing values
(penguins only; "NA" in the source) are empty cells.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "datasets"

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
WINE_FEATURES = [
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280_od315_of_diluted_wines",
    "proline",
]
DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
PENGUIN_COLUMNS = [
    "species",
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
    "year",
]


def snake(name: str) -> str:
    """'mean fractal dimension' -> 'mean_fractal_dimension'; 'od280/od315_x' -> 'od280_od315_x'."""
    out = str(name).strip().lower()
    for ch in " /-()":
        out = out.replace(ch, "_")
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_")


def require(condition: object, message: str) -> None:
    """Stop with a clear message when the source data is not what this script expects."""
    if not condition:
        raise SystemExit(f"make_datasets: {message}")


def format_float(value: float, whole_as_int: bool = False) -> str:
    """Shortest text that reads back as the same float64 (Python's repr).

    With whole_as_int, a whole number loses its ".0" (18.0 -> "18"), which is
    how some of the source files write such values.
    """
    text = repr(float(value))
    if whole_as_int and text.endswith(".0"):
        text = text[:-2]
    return text


def integral_to_int(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Cast float columns whose every value is a whole number to int64."""
    for col in columns:
        values = frame[col].to_numpy(dtype=np.float64)
        if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            frame[col] = values.astype(np.int64)
    return frame


def _features(bunch, names: list[str]) -> pd.DataFrame:
    require(bunch.data.shape[1] == len(names), f"expected {len(names)} features, got {bunch.data.shape[1]}")
    frame = pd.DataFrame(np.asarray(bunch.data, dtype=np.float64), columns=names)
    return integral_to_int(frame, names)


def _class_names(bunch, name: str) -> pd.Series:
    labels = np.asarray(bunch.target_names)[np.asarray(bunch.target)]
    return pd.Series([str(v) for v in labels], name=name, dtype=object)


def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris()
    expected = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    require(list(bunch.feature_names) == expected, f"iris feature names {bunch.feature_names}")
    frame = _features(bunch, IRIS_FEATURES)
    frame["species"] = _class_names(bunch, "species")
    return frame


def wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    bunch = load_wine()
    names = [snake(n) for n in bunch.feature_names]
    require(names == WINE_FEATURES, f"wine feature names {bunch.feature_names}")
    frame = _features(bunch, WINE_FEATURES)
    # UCI labels the three cultivars only by number; sklearn calls them class_0..2.
    frame["cultivar"] = _class_names(bunch, "cultivar")
    return frame


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = [snake(n) for n in bunch.feature_names]
    require(
        len(names) == 30 and names[0] == "mean_radius" and names[-1] == "worst_fractal_dimension",
        f"breast cancer feature names {names}",
    )
    require(list(bunch.target_names) == ["malignant", "benign"], f"target names {bunch.target_names}")
    frame = _features(bunch, names)
    frame["diagnosis"] = _class_names(bunch, "diagnosis")
    return frame


def digits() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    require(list(bunch.feature_names) == names, f"digits feature names {bunch.feature_names[:3]}...")
    frame = _features(bunch, names)
    require(all(frame[n].dtype == np.int64 for n in names), "digit pixels should be whole numbers")
    require(int(frame.min().min()) >= 0 and int(frame.max().max()) <= 16, "digit pixels outside 0..16")
    frame["digit"] = np.asarray(bunch.target, dtype=np.int64)
    return frame


def diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    # scaled=False: the original measurements (diabetes_data_raw.csv.gz), not the
    # mean-centred, norm-scaled version sklearn returns by default.
    bunch = load_diabetes(scaled=False)
    require(list(bunch.feature_names) == DIABETES_FEATURES, f"diabetes feature names {bunch.feature_names}")
    frame = _features(bunch, DIABETES_FEATURES)
    frame["progression"] = np.asarray(bunch.target, dtype=np.float64)
    return frame


def penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    frame = load_penguins()
    require(list(frame.columns) == PENGUIN_COLUMNS, f"penguin columns {list(frame.columns)}")
    frame = frame.copy()
    # Whole-number columns that pandas read as float only because of missing cells.
    for col in ("flipper_length_mm", "body_mass_g", "year"):
        values = frame[col]
        present = values.dropna().to_numpy(dtype=np.float64)
        require(np.all(present == np.round(present)), f"penguin column {col} is not whole numbers")
        frame[col] = values.astype("Int64")
    for col in ("species", "island", "sex"):
        frame[col] = frame[col].astype(object)
    return frame


# file name -> (builder, write whole floats without ".0").  The second field
# follows the bundled source file, so each cell keeps its original text:
# iris and the raw diabetes data write "3.0"; wine, breast cancer and
# penguins write "16" inside otherwise decimal columns.
DATASETS: dict[str, tuple[Callable[[], pd.DataFrame], bool]] = {
    "iris.csv": (iris, False),
    "wine.csv": (wine, True),
    "breast_cancer.csv": (breast_cancer, True),
    "digits.csv": (digits, False),
    "diabetes.csv": (diabetes, False),
    "penguins.csv": (penguins, True),
}


def to_csv_bytes(frame: pd.DataFrame, whole_as_int: bool = False) -> bytes:
    """The exact bytes written for a frame (float columns via format_float)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == np.float64:
            text = ["" if np.isnan(v) else format_float(v, whole_as_int) for v in out[col].to_numpy()]
            out[col] = pd.Series(text, index=out.index, dtype=object)
    text = out.to_csv(index=False, lineterminator="\n", na_rep="")
    return text.encode("utf-8")


def _roundtrip_ok(frame: pd.DataFrame, data: bytes) -> None:
    """Re-read the CSV text and require identical values (floats bit for bit)."""
    back = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])
    require(list(back.columns) == list(frame.columns), "header changed on round trip")
    require(len(back) == len(frame), "row count changed on round trip")
    for col in frame.columns:
        want, got = frame[col], back[col]
        if pd.api.types.is_numeric_dtype(want.dtype):
            w = want.to_numpy(dtype=np.float64, na_value=np.nan)
            g = got.to_numpy(dtype=np.float64, na_value=np.nan)
            require(np.array_equal(w, g, equal_nan=True), f"{col}: values changed on round trip")
        else:
            want_text = [None if pd.isna(v) else str(v) for v in want]
            got_text = [None if pd.isna(v) else str(v) for v in got]
            require(want_text == got_text, f"{col}: text changed on round trip")


def build(out_dir: Path, verbose: bool = True) -> dict[str, str]:
    """Write every dataset into out_dir; return {file name: sha256}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sums: dict[str, str] = {}
    for name, (make, whole_as_int) in DATASETS.items():
        frame = make()
        data = to_csv_bytes(frame, whole_as_int)
        _roundtrip_ok(frame, data)
        (out_dir / name).write_bytes(data)
        sums[name] = hashlib.sha256(data).hexdigest()
        if verbose:
            missing = int(frame.isna().sum().sum())
            print(
                f"{name:<18} {len(frame):>5} rows x {frame.shape[1]:>3} columns"
                f"  missing={missing:<3} sha256={sums[name]}"
            )
    return sums


def check(out_dir: Path) -> int:
    """Regenerate into a temporary directory and compare bytes with out_dir."""
    bad = []
    with tempfile.TemporaryDirectory(prefix="bptrain-datasets-") as tmp:
        build(Path(tmp), verbose=False)
        for name in DATASETS:
            fresh = (Path(tmp) / name).read_bytes()
            target = out_dir / name
            if not target.exists():
                bad.append(f"{target}: missing")
            elif target.read_bytes() != fresh:
                bad.append(f"{target}: differs from a fresh build")
            else:
                print(f"ok  {name}  sha256={hashlib.sha256(fresh).hexdigest()}")
    for line in bad:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; regenerate in a temp dir and exit 1 if any file in --out differs",
    )
    args = parser.parse_args(argv)
    try:
        import palmerpenguins  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        print(f"error: {exc}; run: pip install scikit-learn palmerpenguins", file=sys.stderr)
        return 2
    if args.check:
        return check(args.out)
    build(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
