"""SEC (Kolesnikov & Lampert, ECCV 2016): Seed, Expand and Constrain, the segmentation network trained directly
from localisation seeds instead of random-walk labels. L = L_seed + L_expand + L_constrain, each on the
network's softmax output f (B, K, h, w), background at index 0. Selected with ``segmentation.method: sec``; the
seeds are the affinity-label store's confident pixels (neutral ones ignored).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import MEAN, STD
from .affinitynet import feature_labels
from .crf import dense_crf


def seed_loss(log_probs: torch.Tensor, seeds: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """L_seed = -1/sum_c |S_c| * sum_c sum_{u in S_c} log f_{u,c}, per image, averaged over the images that have seeds."""
    valid = seeds != ignore_index
    picked = log_probs.gather(1, torch.where(valid, seeds, 0).unsqueeze(1)).squeeze(1)
    per_image_count = valid.flatten(1).sum(1)
    per_image = -(picked * valid).flatten(1).sum(1) / per_image_count.clamp(min=1)
    has_seeds = per_image_count > 0
    return per_image[has_seeds].mean() if has_seeds.any() else log_probs.sum() * 0


def gwrp(scores: torch.Tensor, d: float) -> torch.Tensor:
    """Global weighted rank pooling G(f; d) = sum_j d^(j-1) f_(j) / sum_j d^(j-1), f_(j) sorted descending; over the
    last two dimensions. d = 1 is the mean, d -> 0 the max."""
    flat = scores.flatten(-2)
    ordered = flat.sort(dim=-1, descending=True).values
    weights = torch.as_tensor(d, dtype=scores.dtype, device=scores.device) ** torch.arange(
        flat.shape[-1], dtype=scores.dtype, device=scores.device)
    return (ordered * weights).sum(-1) / weights.sum()


def expand_loss(probs: torch.Tensor, present: torch.Tensor, d_fg: float, d_absent: float, d_bg: float,
                eps: float = 1e-5) -> torch.Tensor:
    """L_expand = -1/|T| sum_{c in T} log G_c(f; d+) - 1/|C\\T| sum_{c not in T} log(1 - G_c(f; d-)) - log G_bg(f; d_bg);
    probs (B, K, h, w) with background at 0, present (B, K - 1) multi-hot over the foreground classes."""
    present = present.to(probs.dtype)
    fg = probs[:, 1:]
    g_present = gwrp(fg, d_fg)
    g_absent = fg.flatten(-2).amax(-1) if d_absent == 0 else gwrp(fg, d_absent)
    g_bg = gwrp(probs[:, 0], d_bg)
    term_present = -(present * torch.log(g_present + eps)).sum(1) / present.sum(1).clamp(min=1)
    absent = 1 - present
    term_absent = -(absent * torch.log(1 - g_absent + eps)).sum(1) / absent.sum(1).clamp(min=1)
    return (term_present + term_absent - torch.log(g_bg + eps)).mean()


def constrain_loss(probs: torch.Tensor, crf_probs: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """L_constrain = 1/n sum_u sum_c Q_{u,c} log(Q_{u,c} / f_{u,c}): KL from the network's f to Q = CRF(image, f)."""
    q = crf_probs.detach()
    kl = (q * (torch.log(q + eps) - torch.log(probs + eps))).sum(1)
    return kl.mean()


def crf_of(images: np.ndarray, probs: np.ndarray, crf: dict) -> np.ndarray:
    """Q = dense_crf(image, f) for each of a batch: images (B, h, w, 3) uint8, probs (B, K, h, w) -> (B, K, h, w)."""
    return np.stack([dense_crf(image, p, **crf) for image, p in zip(images, probs)])


def training_loss(settings: dict, ignore_index: int):
    """loss_fn(net, batch, progress) -> (L_seed + L_expand + L_constrain, its terms) for training.fit, on the output
    resized to the crop / ``settings["output_stride"]`` grid (SEC's 41 x 41 of a 321 px crop is stride 8)."""

    def loss_fn(net, batch, progress=0.0):
        images = batch["image"]
        size = [max(1, s // settings["output_stride"]) for s in images.shape[-2:]]
        logits = F.interpolate(net(images)["out"], size=size, mode="bilinear", align_corners=False)
        probs, log_probs = logits.softmax(1), logits.log_softmax(1)
        seeds = feature_labels(batch["labels"], size)
        small = F.interpolate(images, size=size, mode="bilinear", align_corners=False).float()
        mean, std = (torch.as_tensor(v, device=images.device).view(1, 3, 1, 1) for v in (MEAN, STD))
        rgb = ((small * std + mean) * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        q = torch.from_numpy(crf_of(rgb, probs.detach().float().cpu().numpy(), settings["crf"])).to(probs.device)
        terms = {"seed": seed_loss(log_probs, seeds, ignore_index),
                 "expand": expand_loss(probs, batch["target"], settings["d_fg"], settings["d_absent"], settings["d_bg"]),
                 "constrain": constrain_loss(probs, q)}
        return sum(terms.values()), {k: v.item() for k, v in terms.items()}

    return loss_fn
