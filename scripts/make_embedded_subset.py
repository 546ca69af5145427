"""Cut the embedded dataset subset (data/embedded/) from the official MNIST and Fashion-MNIST files.

    python scripts/make_embedded_subset.py [--source DIR] [--out DIR] [--test-size N]

For each dataset it takes the first 10,000 images (and labels) of the official
training set and the official test set, checks every official file against
its SHA-256 (of the decompressed bytes) first, and writes them as gzipped IDX
files (compression level 9, modification time 0, no file name in the header:
the same input gives the same bytes). It also writes MANIFEST.json (per file:
SHA-256 of the decompressed bytes, shape, size, what was cut, the official file
it came from) and a README.md with the provenance and the licences.

Everything written must stay within 15 MB. If it does not, the test sets are
cut to a stratified part (class proportions kept, seed 0, original order),
said so in the manifest; ``--test-size`` forces that size.

The official files are read from --source, else $DNN_COURSE_FULL_DATA, else
../shared/data next to the repository, laid out as <dir>/<dataset>/<file>[.gz].
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from dnn_course import idx  # noqa: E402 - importable once the repository is on sys.path (above)
from dnn_course.datasets import (  # noqa: E402 - importable once the repository is on sys.path (above)
    DATASET_NAMES,
    FILE_NAMES,
    OFFICIAL_SHA256,
    TITLES,
    train_val_split,
)

TRAIN_SIZE = 10_000
BUDGET_BYTES = 15_000_000  # "15 MB", everything written included
COMPRESSLEVEL = 9
LICENCES = {
    "mnist": "CC BY-SA 3.0; MNIST by Yann LeCun, Corinna Cortes and Christopher J. C. Burges",
    "fashion-mnist": "MIT; Fashion-MNIST by Zalando Research (Han Xiao, Kashif Rasul, Roland Vollgraf)",
}
HOMEPAGES = {
    "mnist": "http://yann.lecun.com/exdb/mnist/",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist",
}


def default_source() -> Path:
    return Path(os.environ.get("DNN_COURSE_FULL_DATA") or REPO_ROOT.parent / "shared" / "data")


def read_official(source: Path, name: str, role: str) -> np.ndarray:
    """One official file, verified: uint8 ``(n, 28, 28)`` images or ``(n,)`` labels."""
    base = source / name / FILE_NAMES[role]
    path = base if base.is_file() else base.with_name(base.name + ".gz")
    if not path.is_file():
        sys.exit(f"error: {base}[.gz] not found; pass --source or set DNN_COURSE_FULL_DATA")
    return idx.read_idx(path, expected_sha256=OFFICIAL_SHA256[name][role])


def cut_dataset(source: Path, name: str, test_size: int | None):
    """The subset's four arrays by role, and the sentence saying what was cut for each."""
    official = {role: read_official(source, name, role) for role in FILE_NAMES}
    n_train, n_test = len(official["train_labels"]), len(official["test_labels"])
    if n_train < TRAIN_SIZE:
        sys.exit(f"error: the official {name} training set has only {n_train:,} images")
    train_cut = f"first {TRAIN_SIZE:,} images of the official training set"
    arrays = {
        "train_images": official["train_images"][:TRAIN_SIZE],
        "train_labels": official["train_labels"][:TRAIN_SIZE],
    }
    if test_size is None or test_size >= n_test:
        keep = np.arange(n_test)
        test_cut = "the official test set"
    else:
        _, (keep, _) = train_val_split(np.arange(n_test), official["test_labels"], val_size=test_size, seed=0)
        test_cut = (
            f"a stratified part of the official test set: {test_size:,} of its {n_test:,} images, "
            "class proportions kept (train_val_split, seed 0), in their original order"
        )
    arrays["test_images"] = official["test_images"][keep]
    arrays["test_labels"] = official["test_labels"][keep]
    cuts = {
        "train_images": train_cut,
        "train_labels": f"labels of the {train_cut}",
        "test_images": test_cut,
        "test_labels": f"labels of {test_cut}",
    }
    return arrays, cuts


def write_all(source: Path, out: Path, test_size: int | None) -> dict:
    """Write the files, the manifest and the README; return the manifest."""
    manifest = {
        "description": (
            "Embedded subset of MNIST and Fashion-MNIST for the course, read by "
            "dnn_course.datasets.load_dataset(name) (source='embedded'). Generated; do not edit."
        ),
        "generated_by": "scripts/make_embedded_subset.py",
        "format": f"IDX (as the official files), gzip level {COMPRESSLEVEL}, mtime 0, no file name",
        "checksum": "sha256 is the SHA-256 of the decompressed IDX bytes",
        "budget_bytes": BUDGET_BYTES,
        "datasets": {},
    }
    for name in DATASET_NAMES:
        arrays, cuts = cut_dataset(source, name, test_size)
        files = {}
        for role, array in arrays.items():
            file_name = f"{FILE_NAMES[role]}.gz"
            path = idx.write_idx(out / name / file_name, array, compresslevel=COMPRESSLEVEL)
            files[role] = {
                "file": file_name,
                "sha256": idx.sha256_hex(idx.encode_idx(array)),
                "shape": list(array.shape),
                "count": int(array.shape[0]),
                "gzip_bytes": path.stat().st_size,
                "cut": cuts[role],
                "official_file": FILE_NAMES[role],
                "official_sha256": OFFICIAL_SHA256[name][role],
            }
        manifest["datasets"][name] = {
            "title": TITLES[name],
            "homepage": HOMEPAGES[name],
            "licence": LICENCES[name],
            "files": files,
            "class_counts": {
                split: np.bincount(arrays[f"{split}_labels"], minlength=10).tolist() for split in ("train", "test")
            },
        }
    manifest["data_bytes"] = sum(
        entry["gzip_bytes"] for dataset in manifest["datasets"].values() for entry in dataset["files"].values()
    )
    write_text(out / "README.md", readme_text(manifest))
    # The manifest states the total of everything written, itself included: settle the number.
    manifest["total_bytes"] = 0
    for _ in range(3):
        text = json.dumps(manifest, indent=2) + "\n"
        total = manifest["data_bytes"] + len(text.encode()) + (out / "README.md").stat().st_size
        if total == manifest["total_bytes"]:
            break
        manifest["total_bytes"] = total
    write_text(out / "MANIFEST.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def readme_text(manifest: dict) -> str:
    lines = [
        "# Embedded dataset subset",
        "",
        "Generated by `scripts/make_embedded_subset.py` from the official files; do not edit by hand.",
        '`dnn_course.datasets.load_dataset(name)` reads these files (the default `source="embedded"`)',
        "and checks each against `MANIFEST.json` (SHA-256 of the decompressed IDX bytes).",
        'For the full datasets use `load_dataset(name, source="full")`.',
        "",
        "| dataset | file | images | what |",
        "| --- | --- | --- | --- |",
    ]
    for name, dataset in manifest["datasets"].items():
        for entry in dataset["files"].values():
            lines.append(f"| {dataset['title']} | `{name}/{entry['file']}` | {entry['count']:,} | {entry['cut']} |")
    lines += ["", "## Licences", ""]
    for dataset in manifest["datasets"].values():
        lines.append(f"- {dataset['title']} ({dataset['homepage']}): {dataset['licence']}.")
    lines += [
        "",
        "The subsets are redistributed unchanged (a cut of the official files) under the same licences.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="directory with mnist/ and fashion-mnist/")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "embedded")
    parser.add_argument("--test-size", type=int, default=None, help="cut each test set to a stratified part")
    args = parser.parse_args(argv)
    source = args.source or default_source()

    manifest = write_all(source, args.out, args.test_size)
    if manifest["total_bytes"] > BUDGET_BYTES and args.test_size is None:
        # Over budget: keep the largest stratified part of the test sets (a multiple of 500) that fits.
        test_bytes = sum(
            dataset["files"][role]["gzip_bytes"]
            for dataset in manifest["datasets"].values()
            for role in ("test_images", "test_labels")
        )
        n_test = manifest["datasets"]["mnist"]["files"]["test_labels"]["count"]
        room = BUDGET_BYTES - (manifest["total_bytes"] - test_bytes)
        test_size = max(500, int(n_test * room / test_bytes) // 500 * 500)
        print(f"{manifest['total_bytes']:,} bytes is over the budget; cutting the test sets to {test_size:,} images")
        manifest = write_all(source, args.out, test_size)
    for name, dataset in manifest["datasets"].items():
        for entry in dataset["files"].values():
            print(f"{name}/{entry['file']}: {entry['count']:,} items, {entry['gzip_bytes']:,} bytes ({entry['cut']})")
    print(f"total written: {manifest['total_bytes']:,} bytes (budget {BUDGET_BYTES:,})")
    if manifest["total_bytes"] > BUDGET_BYTES:
        print("error: still over the budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
