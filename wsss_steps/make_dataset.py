"""Stage 0: generate the built-in dataset, a PASCAL-VOC-layout tree made from a seed (see wsss_steps.data.synthetic).

It writes only into a folder that is new, empty or marked as its own (``.wsss-generated-dataset``).
"""

from __future__ import annotations

import sys

from .lib.config import load_params
from .data.synthetic import NotOurs, generate, refuse_foreign_root
from .lib.log import command_parser, setup_logging
from .lib.runtime import run_stage


def main(argv=None):
    parser = command_parser("make_dataset", __doc__)
    parser.add_argument("--dataset", required=True,
                        help="dataset settings (JSON or YAML file): root, classes, train_split, val_split and a "
                             "generate block with image_size, train_images, val_images, seed")
    parser.add_argument("--log", help="log file (default: stderr only)")
    args = parser.parse_args(argv)
    log = setup_logging(args.log)
    dataset = load_params(args.dataset)
    gen = dataset.get("generate")
    if not gen:
        parser.error("the dataset settings have no 'generate' block")
    try:
        refuse_foreign_root(dataset["root"])
    except NotOurs as exc:
        log.error("%s", exc)
        return 1
    splits = generate(dataset["root"], dataset["classes"], gen["image_size"], gen["train_images"], gen["val_images"],
                      gen["seed"], dataset.get("train_split", "train"), dataset.get("val_split", "val"))
    log.info("wrote %s", ", ".join(f"{len(v)} {k}" for k, v in splits.items()) + f" images to {dataset['root']}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
