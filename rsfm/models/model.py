"""``RsfmModel``: backbone + neck + head with one forward contract per task.

Forward contracts (``model(x, targets=None, return_aux=False, **backbone_kwargs)``):

* segmentation: ``x`` ``(B, C, H, W)`` (Prithvi multi-temporal: ``(B, C, T, H, W)``; frames are
  merged after the backbone by the neck's temporal reduction, ``mean`` or ``concat``) -> logits
  ``(B, K, H, W)``. With ``return_aux=True``: ``{"out": logits, "aux": aux_logits_or_None}``
  (same shapes; ``aux`` is None when the head has no auxiliary branch).
* classification: ``x`` -> logits ``(B, K)``.
* detection: torchvision's contract. ``x`` is ``(B, C, H, W)`` or a list of ``(C, H, W)``;
  ``targets`` a list of dicts with ``boxes`` ``(N, 4)`` xyxy pixels, ``labels`` ``(N,)`` int64 in
  ``1..K`` (+ ``masks`` ``(N, H, W)`` uint8 for Mask R-CNN). Train mode returns a dict of losses;
  eval mode a list of dicts with ``boxes``, ``labels``, ``scores`` (+ ``masks`` ``(N, 1, H, W)``).

``backbone_kwargs`` are passed to the backbone: ``temporal_coords`` / ``location_coords``
(Prithvi) or ``wavelengths`` (DOFA).

Submodule names are stable (``backbone``, ``neck``, ``head``) for LoRA targets and freezing rules.

What the model eats is ``model.input_spec`` (:class:`~rsfm.spec.InputSpec`: bands, normalisation,
classes...); how to rebuild it is ``model.config`` (the architecture: a
:class:`~rsfm.config.ModelConfig` without bands, wavelengths and classes). Together they rebuild
the same model: ``rsfm.create_model(model.config, input_spec=model.input_spec)``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from torch import Tensor, nn

from rsfm.config import ModelConfig
from rsfm.models.necks import SimpleFeaturePyramid
from rsfm.saved import architecture
from rsfm.spec import InputSpec

__all__ = ["RsfmModel"]

# Keyword arguments each backbone family's forward accepts.
_BACKBONE_KWARGS = {
    "PrithviViT": ("temporal_coords", "location_coords"),
    "DOFAViT": ("wavelengths",),
}


class RsfmModel(nn.Module):
    """A segmentation, detection or classification model (see the module docstring).

    Args:
        backbone: Backbone from ``rsfm.create_backbone``.
        neck: Neck from :mod:`rsfm.models.necks`.
        head: Head from :mod:`rsfm.models.heads`.
        config: The configuration the model was built from.
        input_spec: What the model eats (its channels are the backbone's input channels).

    Attributes:
        config: The architecture (``rsfm.saved.architecture(config)``: bands, wavelengths and
            classes are None; they live in ``input_spec``).
        input_spec: The :class:`~rsfm.spec.InputSpec`.
        load_report: The backbone's pretrained load (:class:`~rsfm.models.weights.LoadReport`,
            with the band mapping in ``load_report.bands``), or None without pretrained weights.
        task: ``segmentation``, ``detection`` or ``classification``.
        num_classes: ``K`` (detection: without background).
        backbone_frozen: Whether :meth:`freeze_backbone` is in effect.
    """

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: nn.Module, config: ModelConfig,
                 input_spec: InputSpec) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.config = architecture(config)
        self.input_spec = input_spec
        self.load_report = getattr(backbone, "load_report", None)
        self.task = config.task
        self.num_classes = config.num_classes
        self.backbone_frozen = False
        source = getattr(head, "backbone", None) if self.task == "detection" else None
        if source is not None:
            source.owner = self  # the torchvision detector calls our backbone + neck
        if config.freeze_backbone:
            self.freeze_backbone()

    @property
    def has_aux(self) -> bool:
        """True if the segmentation head has an auxiliary branch."""
        return getattr(self.head, "aux", None) is not None

    @property
    def _base_backbone(self) -> nn.Module:
        """The backbone itself, also when LoRA (peft) wraps it."""
        get_base = getattr(self.backbone, "get_base_model", None)
        return get_base() if callable(get_base) else self.backbone

    def _check_backbone_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        allowed = _BACKBONE_KWARGS.get(type(self._base_backbone).__name__, ())
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(
                f"{type(self.backbone).__name__} ({self.config.backbone}) does not take {unknown}; "
                f"backbone keyword arguments it accepts: {list(allowed)}."
            )
        return kwargs

    def forward_features(self, x: Tensor, levels: Collection[int] | None = None,
                         **backbone_kwargs: Any) -> list[Tensor]:
        """Pyramid levels ``(B, C_i, H/s_i, W/s_i)`` (backbone then neck).

        ``levels``: the levels the caller reads; a simple feature pyramid computes only those
        (the others are None). Other necks compute every level.
        """
        maps = self.backbone(x, **self._check_backbone_kwargs(backbone_kwargs))
        if levels is not None and isinstance(self.neck, SimpleFeaturePyramid):
            return self.neck(maps, levels=levels)  # type: ignore[return-value]
        return self.neck(maps)

    def forward(
        self,
        x: Tensor | list[Tensor],
        targets: list[dict[str, Tensor]] | None = None,
        return_aux: bool = False,
        **backbone_kwargs: Any,
    ) -> Any:
        """Run the model (contracts in the module docstring)."""
        if self.task == "detection":
            source = self.head.backbone
            source.kwargs = self._check_backbone_kwargs(backbone_kwargs)
            try:
                return self.head(x, targets)
            finally:
                source.kwargs = {}
        if targets is not None:
            raise TypeError(f"targets= is for detection; a {self.task} model returns logits (compute the loss outside).")
        if not isinstance(x, Tensor):
            raise TypeError(f"A {self.task} model takes one (B, C, H, W) tensor, got {type(x).__name__} "
                            "(lists of images are for detection).")
        if self.task == "classification":
            return self.head(self.forward_features(x, **backbone_kwargs))
        features = self.forward_features(x, levels=self.head.levels(return_aux), **backbone_kwargs)
        size = (x.shape[-2], x.shape[-1])
        logits = self.head(features, size)
        if return_aux:
            return {"out": logits, "aux": self.head.forward_aux(features, size)}
        return logits

    def freeze_backbone(self) -> None:
        """Stop gradients to the backbone and keep it in eval mode (BatchNorm stats, drop-path off)."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone_frozen = True
        self.backbone.eval()

    def unfreeze_backbone(self) -> None:
        """Train the backbone again (follows the model's train/eval mode).

        With LoRA only the adapter weights become trainable again; the base weights stay frozen.
        """
        lora = self._base_backbone is not self.backbone
        for name, p in self.backbone.named_parameters():
            p.requires_grad_(not lora or "lora_" in name)
        self.backbone_frozen = False
        self.backbone.train(self.training)

    def train(self, mode: bool = True) -> RsfmModel:
        """Like ``nn.Module.train``, but a frozen backbone stays in eval mode."""
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def extra_repr(self) -> str:
        return f"task={self.task!r}, backbone={self.config.backbone!r}, head={self.config.head!r}, num_classes={self.num_classes}"
