"""wsss_steps: the stages of a weakly supervised semantic segmentation workflow.

Every module at this level is a command (``python -m wsss_steps.<command> --help``); in pipeline order:

- make_dataset, make_coco, make_oxford_pet, make_voc_sbd: write the built-in dataset, or MS COCO, the Oxford-IIIT
  Pet dataset or PASCAL VOC 2012 with the SBD masks converted to the VOC layout
- make_saliency: saliency maps for EPS where the dataset has none
- train_classifier, extract_cams: the CAM classifier and its multi-scale maps (HDF5)
- mine_regions: adversarial erasing's mined regions, round by round
- make_affinity_labels, train_affinity, random_walk: AffinityNet's labels, network and walk
- train_segmentation, evaluate, figures: the segmentation network, the scores, the report's figures
- compare, comparison_figures: a method comparison's table and bars
- sweep: the walk's and the CAM scales' sweeps
- predict, export: a trained run on new images, and its networks for use without this package
- diagnose, inspect_artifact, gpu_slot: tools (the walk's diagnosis, an artifact's contents and checksums,
  a GPU per job)

What they share lives one level down: ``lib`` (settings, artifacts, logging, training loop, scoring, health
checks), ``methods`` (each method's maths), ``nets`` (networks), ``data`` (datasets and loaders).
"""

import sys as _sys
from pathlib import Path as _Path

__version__ = "0.1.0"


def _answer_help_without_importing() -> None:
    """``python -m wsss_steps.<command> --help`` (or ``--version``) answered from wsss_steps/help/<command>.txt,
    before the command's module imports PyTorch: the text is what its parser prints (scripts/help_texts.py writes
    it, a unit test checks it). Runs only while Python is locating a ``-m`` module (sys.argv[0] is then "-m")."""
    argv = getattr(_sys, "orig_argv", [])
    if _sys.argv[:1] != ["-m"] or "-m" not in argv:
        return
    at = argv.index("-m")
    module, args = (argv[at + 1], argv[at + 2:]) if at + 1 < len(argv) else ("", [])
    if not module.startswith(__name__ + "."):
        return
    args = args[:args.index("--")] if "--" in args else args  # what follows -- is another command's
    text = _Path(__file__).parent / "help" / f"{module.split('.', 1)[1]}.txt"
    if {"-h", "--help"} & set(args) and text.is_file():
        _sys.stdout.write(text.read_text())
        raise SystemExit(0)
    if "--version" in args and text.is_file():
        _sys.stdout.write(f"wsss-steps {__version__}\n")
        raise SystemExit(0)


_answer_help_without_importing()
