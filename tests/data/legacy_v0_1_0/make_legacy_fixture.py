import shutil
import sys

sys.path.insert(0, "tests")
from pathlib import Path

import numpy as np
import rasterio
from test_train import tiny_recipe

import rsfm

out = Path("/tmp/legacy/run")
shutil.rmtree(out, ignore_errors=True)
rsfm.train(tiny_recipe(out, model={"task": "segmentation", "backbone": "prithvi_eo_v2_300m", "head": "fcn", "num_classes": 2, "bands": ["VV", "VH"], "backbone_kwargs": {"depth": 2, "embed_dim": 32, "num_heads": 2}, "neck": {"out_channels": 16}}, train={"epochs": 1, "progress": False}, output={"dir": str(out), "plots": False}))
dst = Path("tests/data/legacy_v0_1_0")
shutil.rmtree(dst, ignore_errors=True); dst.mkdir(parents=True)
for name in ("config.json", "model.safetensors", "recipe.yaml"):
    shutil.copy(out / name, dst / name)
scene = min(Path("tests/data/sen1floods11/S1Hand").glob("*.tif"))
res = rsfm.predict(str(dst), str(scene), "/tmp/legacy/pred.tif", tile_size=64, progress=False, probabilities="float32")
with rasterio.open("/tmp/legacy/pred.tif") as ds:
    arr = ds.read(1)
np.save(dst / "expected_prediction.npy", arr)
with rasterio.open(res.probabilities) as ds:
    np.save(dst / "expected_probabilities.npy", ds.read().astype(np.float16))
(dst / "README.md").write_text(f"config.json and weights written by rsfm 0.1.0 (the first release) for the tiny test recipe;\nexpected_prediction.npy = rsfm 0.1.0 `predict` of {scene.name} with tile_size=64 (classes; probabilities as float16).\nUsed by tests to check that folders written by the first release still load and predict identically.\n")
print(arr.shape, np.unique(arr, return_counts=True))
