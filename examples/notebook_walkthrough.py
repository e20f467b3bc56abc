# %% [markdown]
# # rsfm in a notebook: flood mapping from Sentinel-1 radar
#
# The notebook API (`rsfm.learn`) in the shape of `arcgis.learn`: prepare the data, build a
# model, find a learning rate, train, look at the results, predict a scene, save, and write the
# whole workflow out as a recipe that `rsfm train` reproduces.
#
# Data: the Sen1Floods11 hand-labelled chips bundled with rsfm (`recipes/demo_data`), VV/VH
# backscatter, classes dry / water, -1 = no data. Open this file in VS Code or Jupyter
# (jupytext) to run it cell by cell, or run it as a script:
#
#     python examples/notebook_walkthrough.py
#
# `RSFM_WALKTHROUGH_TINY=1` runs a few steps only (the test suite does that);
# `RSFM_WALKTHROUGH_OUT=<folder>` says where the outputs go (default `runs/walkthrough`).

# %%
import os
import shutil
from pathlib import Path

import rsfm
from rsfm.learn import Learner, UNet, prepare_data

TINY = os.environ.get("RSFM_WALKTHROUGH_TINY") == "1"
OUT = Path(os.environ.get("RSFM_WALKTHROUGH_OUT", "runs/walkthrough"))
ROOT = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd()
DATA = ROOT / "recipes" / "demo_data" / "sen1floods11"
for old in ("run", "flood_model"):  # a fresh start each time the walkthrough runs
    shutil.rmtree(OUT / old, ignore_errors=True)


def show(obj: object) -> None:
    """A cell's result: rich display in Jupyter, text in a terminal."""
    try:
        from IPython.display import display

        display(obj)
    except ImportError:
        print(obj)  # noqa: T201  (a script: the cell results go to the terminal)


# %% [markdown]
# ## 1. Prepare the data
# `train/` and `val/` folders, each with `S1Hand/` images and `LabelHand/` labels. The folder
# names are given because they are not `images/` and `labels/`; the `_S1Hand` / `_LabelHand`
# name endings are found, the 256 px chips are tiled into 64 px tiles (`chip_size`), -1 is
# recognised as "no label", and the normalisation statistics are computed from the training
# images.

# %%
data = prepare_data(DATA, images="S1Hand", labels="LabelHand", classes=["dry", "water"],
                    chip_size=64, batch_size=4 if TINY else 16)
show(data)

# %%
show(data.show_batch(n=8, path=OUT / "batch.png"))

# %% [markdown]
# ## 2. A model, and a learning rate
# A ResNet-18 UNet from scratch (`pretrained=True` would start from ImageNet weights,
# downloaded from the Hub). `lr_find` trains a copy of the model for a few dozen steps with a
# growing learning rate and suggests one.

# %%
model = UNet(data, backbone="resnet18", pretrained=False, seed=0, out=OUT / "run",
             loss="ce+dice", train={"progress": not TINY})
found = model.lr_find(num_steps=5 if TINY else 20)
show(found)

# %% [markdown]
# ## 3. Train
# The same training loop as `rsfm train` (accelerate, checkpoints, metrics, plots), in
# `model.run_dir`. Calling `fit` again continues the run.

# %%
# lr=found takes the suggestion; here the demo recipe's tuned 3e-3 (fit(lr=None) runs lr_find)
if TINY:
    model.fit(1, lr=3e-3, max_steps=2)
else:
    model.fit(2, lr=3e-3)
show(model)

# %%
show(model.plot_losses())
show(model.show_results(n=2 if TINY else 4))
show(model.metrics())
show(model.per_class_metrics())

# %% [markdown]
# ## 4. Evaluate and predict
# `evaluate` scores whole chips through the prediction tiling (as the model will be used);
# `predict` writes a georeferenced class raster (COG) and a preview.

# %%
overlap = 0 if TINY else None  # None: a quarter tile, blended
result = model.evaluate("val", overlap=overlap)
show(result.summary())
scene = DATA / "val" / "S1Hand" / "Bolivia_312675_S1Hand.tif"
pred = model.predict(scene, out=OUT / "bolivia_water.tif", preview=True, overlap=overlap)
show(pred.classes)

# %% [markdown]
# ## 5. Save, reload, and write the recipe
# `save` writes a model folder (`rsfm.from_pretrained`, `rsfm predict` and `rsfm push` read
# it). `to_recipe` writes the recipe of this workflow:
# `rsfm train walkthrough.yaml output.dir=runs/again` reproduces the same weights.
# `Learner.from_recipe` / `Learner.from_run` bring a recipe or a run back into a notebook.

# %%
saved = model.save(OUT / "flood_model")
reloaded = rsfm.from_pretrained(saved)
show(reloaded.saved_config.input.class_names)
model.to_recipe(OUT / "walkthrough.yaml")
show((OUT / "walkthrough.yaml").read_text().splitlines()[:12])

# %%
again = Learner.from_run(model.run_dir)
show(again)
