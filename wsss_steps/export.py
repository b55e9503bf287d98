"""Export a finished run's networks for use without this package: the segmentation network and the CAM classifier
as TorchScript with the input normalisation inside, their plain ``state_dict`` (.pth), and a JSON per network
(classes, mean and std, output stride, input and output conventions, the training run's provenance).

    python -m wsss_steps.export --run results/<run> [--out DIR]

Written to ``DIR`` (default ``results/<run>/export``):

- ``segmentation.torchscript.pt``: ``torch.jit.load(path)(image)`` with ``image`` a float tensor (N, 3, H, W) of RGB
  values in [0, 1], any H and W, gives the class scores (N, K, H, W) at the image's size (argmax: the labels the
  pipeline predicts; index k is ``classes[k]`` of the JSON).
- ``classifier.torchscript.pt``: the same input gives ``(scores, cams)``: the image-level class scores (N, C) of the
  C object classes (logit > 0: present) and their raw class activation maps (N, C, h, w) at the classifier's output
  stride; the pipeline's CAMs are these maps, ReLU'd, summed over scales and flips, upsampled and divided by their
  maximum (``wsss_steps/methods/cam.py``).
- ``<network>.state_dict.pth``: ``torch.load(path)``, plain tensors (the architecture is the JSON's ``params``).
- ``<network>.json``: what the network expects and where it came from.

A rerun writes again only what is older than the weights it is made from. The exported networks compute in
float32 whatever ``backbone.amp`` the run used.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from .lib.log import command_parser

STAGE = "export"
NETWORKS = ("segmentation", "classifier")


def exported_module(net, stride: int, mean, std, output: str):
    """A module taking RGB in [0, 1] (N, 3, H, W): normalise, pad to a multiple of ``stride`` at the bottom and right
    (zeros after normalisation, as the pipeline pads), run ``net``; ``output`` "segmentation" gives the scores
    cropped to (H, W), "classifier" the (scores, cams) pair."""
    import torch

    from .data.transforms import pad_to_stride

    class Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.stride = stride
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, image):
            x, (h, w) = pad_to_stride((image - self.mean) / self.std, self.stride)
            if output == "segmentation":
                return self.net(x)["out"][:, :, :h, :w]
            cams = self.net.cam(x)
            return self.net.cam_scores(cams), cams

    return Exported().eval()


def to_torchscript(module, path: Path, size: int):
    """Trace ``module`` on a (1, 3, size, size) input and save it; the sizes flow through as traced values, so the
    saved module takes any image size (tests/workflow/test_export_run.py checks another)."""
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", message=".*torch.jit.trace.*deprecated")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.save.*deprecated")
        traced = torch.jit.trace(module, torch.rand(1, 3, size, size), strict=False, check_trace=False)
        torch.jit.save(traced, str(path))


def float32(net):
    """``net`` with every backbone's automatic mixed precision switched off: exported networks compute in float32."""
    for module in net.modules():
        if hasattr(module, "amp"):
            module.amp = None
    return net


def main(argv=None):
    parser = command_parser(STAGE, __doc__)
    parser.add_argument("--run", type=Path, required=True, help="a finished run's folder (results/<run>)")
    parser.add_argument("--out", type=Path, help="folder to write to (default: <run>/export)")
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS),
                        help="which networks to export (default: both)")
    parser.add_argument("--log", help="log file (default: stderr only)")
    args = parser.parse_args(argv)
    files = {name: args.run / f"{name}.weights.h5" for name in args.networks}
    for name, path in files.items():
        if not path.is_file():
            parser.error(f"{path}: no {name} weights there (finish the run first)")
    out = args.out or args.run / "export"

    import torch

    from .lib.artifacts import file_sha256, open_store
    from .data.transforms import MEAN, STD
    from .lib.files import atomic_path
    from .lib.log import setup_logging
    from .nets.classifier import load_classifier
    from .nets.segmentation import load_segmentation_net

    log = setup_logging(args.log)
    out.mkdir(parents=True, exist_ok=True)
    for name, weights in files.items():
        targets = {"torchscript": out / f"{name}.torchscript.pt", "state_dict": out / f"{name}.state_dict.pth",
                   "json": out / f"{name}.json"}
        if all(p.exists() and p.stat().st_mtime >= weights.stat().st_mtime for p in targets.values()):
            log.info("%s: exports in %s are newer than %s; nothing to do", name, out, weights)
            continue
        with open_store(weights, "train_segmentation" if name == "segmentation" else "train_classifier") as store:
            attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in store.attrs.items() if k != "health"}
        classes = [str(c) for c in attrs["classes"]]
        params = json.loads(attrs["params"])
        if name == "segmentation":
            net, _ = load_segmentation_net(weights, "cpu")
            stride = net.backbone.backbone.stride
        else:
            net = load_classifier(weights, params["backbone"], classes).eval()
            stride = net.backbone.stride
        net = float32(net)
        module = exported_module(net, stride, MEAN.tolist(), STD.tolist(), name)
        with atomic_path(targets["torchscript"]) as tmp:
            to_torchscript(module, Path(tmp), 4 * stride)
        with atomic_path(targets["state_dict"]) as tmp:
            torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, tmp)
        info = {
            "network": name, "classes": classes if name == "segmentation" else classes[1:],
            "input": "float32 (N, 3, H, W), RGB in [0, 1], any H and W; normalised inside by mean and std",
            "output": ("class scores (N, K, H, W) at the input size; argmax over K = the predicted class index"
                       if name == "segmentation" else
                       "(scores (N, C), cams (N, C, h, w)): image-level logits of the C object classes and their "
                       "raw class activation maps at the output stride"),
            "mean": MEAN.tolist(), "std": STD.tolist(), "output_stride": stride, "precision": "float32",
            "weights": str(weights), "weights_sha256": file_sha256(weights), "params": params,
            "provenance": {k: v for k, v in attrs.items() if k not in ("params", "classes")},
        }
        with atomic_path(targets["json"]) as tmp:
            Path(tmp).write_text(json.dumps(info, indent=2, default=str) + "\n")
        log.info("%s: wrote %s", name, ", ".join(str(p) for p in targets.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
