"""Print what made an artifact: stage, parameters, seed, package version, input checksums, contents.

With --curve, print a weights file's training curve (the loss and its terms per step) as CSV.
With --verify, check instead that each artifact still holds what was written (every dataset's SHA-256,
recorded when it was written, and the number of datasets), whatever its modification time says.
"""

from __future__ import annotations

import json
import sys

import h5py

from .lib.artifacts import ArtifactError, curve_csv, describe, open_store, rebuild_hint, verify_store
from .lib.log import command_parser

def main(argv=None):
    parser = command_parser("inspect_artifact", __doc__)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="HDF5 artifacts (.h5) made by the workflow")
    parser.add_argument("--verify", action="store_true",
                        help="check each artifact's contents against the checksums recorded when it was written")
    parser.add_argument("--curve", action="store_true",
                        help="print the training curve of a weights file as CSV (step, loss and the loss's terms)")
    args = parser.parse_args(argv)
    status = 0
    for path in args.paths:
        try:
            if args.verify:
                status |= verify_one(path)
            elif args.curve:
                open_store(path).close()  # a missing or foreign file is named like the other modes do
                text = curve_csv(path)
                if not text:
                    print(f"ERROR {path}: has no training curve (trained before curves were recorded, or not a "
                          f"weights file); retrain it to record one.", file=sys.stderr)
                    status = 1
                print(text, end="")
            else:
                print(json.dumps(describe(path), indent=2, default=str))
        except ArtifactError as exc:
            print(f"ERROR {exc}", file=sys.stderr)
            status = 1
    return status


def verify_one(path) -> int:
    """Print 'ok <path>' or one ERROR line naming what changed and the command that rebuilds it; 1 when broken."""
    problems = verify_store(path)
    if not problems:
        print(f"ok {path}")
        return 0
    with h5py.File(path, "r") as store:
        stage = store.attrs.get("stage")
    print(f"ERROR {path}: {'; '.join(problems)}; {rebuild_hint(stage, path)}.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
