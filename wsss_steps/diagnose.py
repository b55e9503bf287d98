"""Diagnose the random walk: how AffinityNet's affinities split by ground truth, and what an oracle affinity gives.

Prints, over the images of a split, the mean affinity W (and W^beta) of neighbour pairs inside one
object, inside background and across a boundary, and the pseudo-label mIoU of the walk with the
learned affinity next to the walk with an oracle affinity from the ground-truth masks. A large gap
between the two walks points at AffinityNet, not at the CAMs or the walk. With affinity.method irn the
affinities are IRN's boundary affinities, the learned walk is IRN's, and the boundary map B > 0.5 is scored
against the masks' class boundaries (precision and recall within 2 px).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

from .lib.artifacts import LOCALISATION_STAGES, atomic_path, load_weights, open_store, read_array
from .lib.config import load_params, settings_arg
from .data.transforms import to_tensor
from .lib.log import progress
from .methods import irn
from .methods.affinitynet import full_offsets, neighbour_affinity
from .methods.random_walk import check_background, check_walk_stride, features_at_stride, scores_at_stride, walk_labels
from .lib.metrics import confusion_matrix, mean_iou
from .nets.affinity import build_affinity_net
from .nets.boundary import build_boundary_net
from .lib.runtime import base_parser, run_stage, start


def affinity_by_region(affinity: np.ndarray, labels: np.ndarray, radius: int, ignore: int = 255) -> dict:
    """Lists of W over neighbour pairs (i, i + o), o != 0, split into same object / same background / cross."""
    n, h, w = affinity.shape
    out = {"object": [], "background": [], "cross": []}
    pad = radius
    padded = np.pad(labels.astype(np.int64), pad, constant_values=-1)
    for k, (dy, dx) in enumerate(full_offsets(radius)):
        if (dy, dx) == (0, 0):
            continue
        other = padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]
        valid = (labels != ignore) & (other != ignore) & (other >= 0)
        same = valid & (labels == other)
        out["object"].append(affinity[k][same & (labels > 0)])
        out["background"].append(affinity[k][same & (labels == 0)])
        out["cross"].append(affinity[k][valid & (labels != other)])
    return {key: np.concatenate(v) if v else np.zeros(0) for key, v in out.items()}


def oracle_affinity(labels: np.ndarray, radius: int, ignore: int = 255) -> torch.Tensor:
    """W = 1 for neighbours with the same ground-truth label (ignore counts as background), else 0."""
    lab = torch.from_numpy(np.where(labels == ignore, 0, labels).astype(np.int64))
    onehot = F.one_hot(lab, int(lab.max()) + 1).permute(2, 0, 1).float() * 1e3
    return (neighbour_affinity(onehot, radius) > 0.5).float()


def main(argv=None):
    parser = base_parser("diagnose", __doc__)
    parser.add_argument("--backbone", required=True, type=settings_arg("backbone", needs=("name",)), help="backbone settings (JSON or YAML file)")
    parser.add_argument("--affinity-params", required=True, type=settings_arg("affinity", needs=("radius", "head_channels")), help="affinity settings: radius, head_channels")
    parser.add_argument("--random-walk-params", required=True, type=settings_arg("random_walk"), help="random_walk settings: alpha, beta, t, stride")
    parser.add_argument("--cams", required=True, help="CAM store (.h5)")
    parser.add_argument("--affinity", required=True, help="AffinityNet weights (.h5)")
    parser.add_argument("--limit", type=int, default=100, help="images to look at (default 100)")
    parser.add_argument("--out", help="also write the figures as JSON to this file")
    args, log, device, layout = start(parser, argv)
    affinity_cfg = load_params(args.affinity_params, "affinity")
    walk = load_params(args.random_walk_params, "random_walk")
    radius, beta = affinity_cfg["radius"], walk["beta"]
    by_boundary = affinity_cfg.get("method") == "irn"
    if by_boundary:
        model = build_boundary_net(load_params(args.backbone, "backbone"), pretrained=False)
    else:
        model = build_affinity_net(load_params(args.backbone, "backbone"), affinity_cfg["head_channels"],
                                   pretrained=False, feature_stride=affinity_cfg.get("feature_stride"))
    load_weights(args.affinity, model, stage="train_affinity")
    model.to(device).eval()
    try:
        stride = check_walk_stride(walk["stride"])  # the grid the walk runs on, as in random_walk
        check_background(walk["background"])
    except ValueError as exc:
        parser.error(str(exc))
    n = layout.num_classes
    conf = {"learned": np.zeros((n, n), np.int64), "oracle": np.zeros((n, n), np.int64)}
    pairs = {"object": [], "background": [], "cross": []}
    edges = {"predicted": 0, "predicted_near": 0, "true": 0, "true_near": 0}
    with open_store(args.cams, LOCALISATION_STAGES, layout) as cams, torch.no_grad():
        with_masks = [i for i in json.loads(cams.attrs["ids"]) if layout.has_mask(i)]
        ids = with_masks[: args.limit]
        if not ids:
            log.error("%s: none of its images has a mask under %s, so there is nothing to diagnose.", args.cams,
                      layout.root / layout.mask_dir)
            return 1
        for image_id in progress(ids, desc="diagnose"):
            classes = [int(c) for c in cams[image_id].attrs["classes"]]
            gt = layout.mask(image_id)
            image = to_tensor(layout.image(image_id)).to(device)
            if by_boundary:
                boundary, padded_size, (h, w) = irn.boundary_map(model, image, stride)
                fine = boundary if stride == irn.BOUNDARY_STRIDE else irn.boundary_map(model, image)[0]
                up = F.interpolate(fine[None, None], scale_factor=irn.BOUNDARY_STRIDE, mode="bilinear",
                                   align_corners=False)[0, 0, :gt.shape[0], :gt.shape[1]]
                for key, count in irn.boundary_precision_recall(up.cpu().numpy() > 0.5, gt, layout.ignore_index).items():
                    edges[key] += count
                grid = (padded_size[0] // stride, padded_size[1] // stride)  # the padding's cells as boundary (a = 0)
                learned = irn.neighbour_boundary_affinity(F.pad(boundary, (0, grid[1] - boundary.shape[1], 0,
                                                                           grid[0] - boundary.shape[0]), value=1.0), radius)
            else:
                features, padded_size, (h, w) = features_at_stride(model, image, stride)
                learned = neighbour_affinity(features, radius)
            fh, fw = learned.shape[-2:]
            gt_small = np.full((fh * stride, fw * stride), layout.ignore_index, np.uint8)
            gt_small[:h, :w] = gt
            gt_small = gt_small[stride // 2::stride, stride // 2::stride]
            for key, values in affinity_by_region(learned.cpu().numpy(), gt_small, radius, layout.ignore_index).items():
                pairs[key].append(values)
            by_threshold = walk["background"] == "threshold" and bool(classes)
            small = scores_at_stride(read_array(cams, image_id), None if by_threshold else walk["alpha"], stride,
                                     padded_size)
            for key, affinity in (("learned", learned.cpu()), ("oracle", oracle_affinity(gt_small, radius, layout.ignore_index))):
                if by_boundary and key == "learned":  # IRN's own walk on M * (1 - B)
                    labels = irn.walk_on_boundary(boundary, read_array(cams, image_id), classes, beta, walk["t"],
                                                  radius, stride, padded_size, (h, w), walk["bg_threshold"])
                else:
                    labels = walk_labels(small, affinity, classes, beta, walk["t"], radius, padded_size, (h, w),
                                         walk["bg_threshold"] if by_threshold else None)
                conf[key] += confusion_matrix(labels, gt, n, layout.ignore_index)
    report = {"images": len(ids), "radius": radius, "beta": beta, "stride": stride, "affinity": {},
              "walk_miou": {key: round(100 * mean_iou(c), 2) for key, c in conf.items()}}
    for key, values in pairs.items():
        v = np.concatenate(values)
        row = {"pairs": int(v.size), "mean_w": _mean(v), "mean_w_beta": _mean(v ** beta),
               "median_w": float(np.median(v)) if v.size else None}
        report["affinity"][key] = row
        log.info("affinity %-10s pairs %8d  mean W %s  mean W^beta %s  median W %s", key, row["pairs"],
                 *(_show(row[k]) for k in ("mean_w", "mean_w_beta", "median_w")))
    log.info("pseudo-label mIoU over %d images: learned affinity %.2f, oracle affinity %.2f", len(ids),
             report["walk_miou"]["learned"], report["walk_miou"]["oracle"])
    if by_boundary:
        report["boundary"] = {"precision": round(edges["predicted_near"] / max(1, edges["predicted"]), 4),
                              "recall": round(edges["true_near"] / max(1, edges["true"]), 4),
                              "tolerance_px": 2, "threshold": 0.5, **edges}
        log.info("boundary B > 0.5 against the masks' class boundaries, within 2 px: precision %.3f, recall %.3f",
                 report["boundary"]["precision"], report["boundary"]["recall"])
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(report, indent=1) + "\n")
        log.info("wrote %s", args.out)


def _mean(values: np.ndarray):
    return float(values.mean()) if values.size else None


def _show(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(run_stage(main))
