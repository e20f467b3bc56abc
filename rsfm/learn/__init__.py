"""The notebook API, in the shape of ``arcgis.learn``: ``prepare_data`` -> a model class ->
``lr_find`` / ``fit`` / ``show_results`` / ``predict`` / ``save``, where every model is a recipe.

>>> from rsfm.learn import prepare_data, UNet
>>> data = prepare_data("exports/floods", chip_size=256, batch_size=16)
>>> data.show_batch()
>>> model = UNet(data, backbone="resnet50")
>>> model.fit(10, lr=model.lr_find())
>>> model.show_results(); model.per_class_metrics()
>>> model.predict("scene.tif", out="water.tif")
>>> model.to_recipe("floods.yaml")      # `rsfm train floods.yaml` reproduces the run

* :mod:`rsfm.learn.data`: :func:`prepare_data` and :class:`Data` (the recipe's ``data:``).
* :mod:`rsfm.learn.learner`: :class:`Learner` and the model classes.
* :mod:`rsfm.learn.lr_find`: the learning-rate range test.
"""

from __future__ import annotations

from rsfm.learn.data import Data, prepare_data
from rsfm.learn.learner import (
    FCN,
    FCOS,
    Classifier,
    DeepLab,
    FasterRCNN,
    Learner,
    MaskRCNN,
    RetinaNet,
    UNet,
)
from rsfm.learn.lr_find import LRFindResult
from rsfm.learn.picture import Picture

__all__ = [
    "FCN",
    "FCOS",
    "Classifier",
    "Data",
    "DeepLab",
    "FasterRCNN",
    "LRFindResult",
    "Learner",
    "MaskRCNN",
    "Picture",
    "RetinaNet",
    "UNet",
    "prepare_data",
]
