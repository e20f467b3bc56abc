"""The model card (``README.md``) of a saved model, built from its :class:`~rsfm.saved.SavedConfig`.

Metadata goes through ``huggingface_hub.ModelCardData`` / ``EvalResult`` (so the Hub parses it:
``model-index`` with dataset splits, ``base_model`` + ``base_model_relation``); the body says what
the model eats (bands with wavelengths and normalisation, nodata, tile size), what it emits
(classes with colours, ignore index), how well it did, how to use it, its limits and whom to cite.
Every fact comes from the ``SavedConfig``; nothing is guessed from the backbone's pretraining.
"""

from __future__ import annotations

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from rsfm.bands import list_sensors, sensor_bands
from rsfm.cards import all_cards
from rsfm.errors import BandError
from rsfm.hub.save import base_model_repo
from rsfm.saved import SavedConfig
from rsfm.spec import InputSpec, Normalization

__all__ = ["PIPELINE_TAGS", "card_tags", "model_card", "usage_snippets"]

PIPELINE_TAGS = {"segmentation": "image-segmentation", "detection": "object-detection",
                 "classification": "image-classification"}
# rsfm metric -> (Hub metric type, display name)
_METRICS = {"miou": ("mean_iou", "mIoU"), "macro_f1": ("f1", "macro F1"),
            "accuracy": ("accuracy", "accuracy"), "map": ("map", "mAP"),
            "map_50": ("map_50", "mAP@50"), "map_75": ("map_75", "mAP@75")}
_SPLITS = (("test", "test"), ("val", "validation"))  # metric prefix -> dataset split
_SAR = frozenset({"VV", "VH", "HH", "HV"})
_SENSOR_TAGS = {"sentinel2": "sentinel-2", "sentinel1": "sentinel-1", "landsat8": "landsat-8",
                "landsat9": "landsat-9", "hls": "hls", "naip": "naip", "rgb": "rgb"}


# ------------------------------------------------------------------------------------ metadata
def _data_sensors(spec: InputSpec) -> list[str]:
    """Catalog sensors of the data: stated, named by the bands, or the one sensor having them all."""
    if spec.sensor:
        try:
            return [sensor_bands(spec.sensor)[0].sensor]
        except BandError:
            return []
    named = sorted({b.sensor for b in spec.bands if b.sensor not in ("generic", "custom")})
    if named:
        return named
    commons = {b.common_name for b in spec.bands}
    if None in commons:  # declared layers (DEM, masks) belong to no sensor
        commons.discard(None)
    if not commons:
        return []
    having = [s for s in list_sensors() if commons <= {b.common_name for b in sensor_bands(s)}]
    return having if len(having) == 1 else []


def card_tags(config: SavedConfig) -> list[str]:
    """Hub tags: rsfm, task, backbone family, the data's sensor and modality (never the
    backbone's pretraining sensor), LoRA."""
    spec = config.input
    tags = ["rsfm", "remote-sensing", "earth-observation", config.model.task, config.card.family]
    tags += [_SENSOR_TAGS.get(s, s) for s in _data_sensors(spec)]
    commons = [b.common_name for b in spec.bands]
    optical = [c for c, b in zip(commons, spec.bands)
               if c is not None and c not in _SAR and b.wavelength_um is not None]
    if _SAR & set(commons):
        tags.append("sar")
    if set(optical) == {"RED", "GREEN", "BLUE"} and len(optical) == len(spec.bands):
        tags.append("rgb")
    elif len(optical) > 3:
        tags.append("multispectral")
    if spec.num_frames > 1:
        tags.append("multi-temporal")
    if config.lora is not None:
        tags += ["lora", "peft"]
    return [t for t in dict.fromkeys(tags) if t]


def _eval_results(config: SavedConfig, name: str) -> list[EvalResult]:
    task = PIPELINE_TAGS[config.model.task]
    dataset = config.datasets[0] if config.datasets else None
    out = []
    for prefix, split in _SPLITS:
        for key, (kind, label) in _METRICS.items():
            value = config.metrics.get(f"{prefix}_{key}")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(EvalResult(
                    task_type=task, dataset_type=dataset or "custom",
                    dataset_name=dataset or f"{name} {split} split", dataset_split=split,
                    metric_type=kind, metric_value=round(float(value), 4), metric_name=label))
    return out


def _card_data(config: SavedConfig, name: str, lora_only: bool) -> ModelCardData:
    base = base_model_repo(config)
    results = _eval_results(config, name)
    extra = {"base_model_relation": "adapter" if lora_only else "finetune"} if base else {}
    return ModelCardData(
        library_name="rsfm",
        license=config.card.license or "other",
        pipeline_tag=PIPELINE_TAGS[config.model.task],
        tags=card_tags(config),
        base_model=base,
        datasets=list(config.datasets) or None,
        metrics=list(dict.fromkeys(r.metric_type for r in results)) or None,
        model_name=name if results else None,
        eval_results=results or None,
        **extra,
    )


# ---------------------------------------------------------------------------------------- body
def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _normalization_text(n: Normalization) -> str:
    scale = "" if n.value_scale == 1.0 else f"raw values x {n.value_scale:g}, then "
    if n.mode == "stats":
        return f"`stats`: {scale}(x - mean) / std per band, with the mean and std below"
    if n.mode == "per_tile":
        return f"`per_tile`: {scale}each tile standardised per band (mean 0, std 1)"
    if n.mode == "minmax":
        return f"`minmax`: {scale}each tile scaled per band to [0, 1]"
    return f"`none`: {scale.removesuffix(', then ') or 'raw values as they are'}"


def _bands_table(spec: InputSpec) -> str:
    n = spec.normalization
    stats = n.mode == "stats" and n.mean is not None and n.std is not None
    head = "| # | band | measures | wavelength (um) |" + (" mean | std |" if stats else "")
    rule = "|---|---|---|---|" + ("---|---|" if stats else "")
    rows = []
    for i, b in enumerate(spec.bands):
        what = b.description or b.common_name or ""
        row = f"| {i + 1} | `{b.name}` | {what} | {_num(b.wavelength_um)} |"
        if stats:
            row += f" {_num(n.mean[i])} | {_num(n.std[i])} |"  # type: ignore[index]
        rows.append(row)
    return "\n".join([head, rule, *rows])


def _input_section(spec: InputSpec) -> str:
    lines = [(f"- {len(spec.bands)} band(s), in this order (matched by the files' band "
             "descriptions, else by position):"), "", _bands_table(spec), "",
             f"- Normalisation: {_normalization_text(spec.normalization)}."]
    if spec.indices:
        lines.append(f"- Spectral indices appended as extra channels: {', '.join(spec.indices)}.")
    lines.append(f"- Nodata: `{spec.nodata:g}`." if spec.nodata is not None else
                 "- Nodata: the files' own nodata value.")
    if spec.tile_size:
        lines.append(f"- Trained on {spec.tile_size} x {spec.tile_size} pixel tiles (prediction's "
                     "default tile size).")
    if spec.num_frames > 1:
        lines.append(f"- {spec.num_frames} time steps per sample (one file per date).")
    if spec.file_bands:
        lines.append(f"- Files without band descriptions are read as: {', '.join(spec.file_bands)}.")
    return "\n".join(lines)


def _classes_section(config: SavedConfig) -> str:
    spec = config.input
    valued = any(c.value is not None for c in spec.classes)  # label values differ from the ids
    rows = [f"| {i} | {c.name} | `#{c.color[0]:02x}{c.color[1]:02x}{c.color[2]:02x}` |"
            + (f" {v} |" if valued else "")
            for i, (c, v) in enumerate(zip(spec.classes, spec.class_values))]
    first = "1" if config.model.task == "detection" else "0"
    note = (f"Class ids start at {first}"
            + (" (0 is the background)" if config.model.task == "detection" else "")
            + f". Ignore index: `{spec.ignore_index}` (label pixels with this value were not "
              "scored in training or evaluation; it is never a class id).")
    if valued:
        note += " Predicted class rasters hold the label values (last column), as the training labels did."
    head = ["| id | class | colour | label value |", "|---|---|---|---|"] if valued else [
        "| id | class | colour |", "|---|---|---|"]
    return "\n".join([*head, *rows, "", note])


def _metrics_section(config: SavedConfig) -> str:
    rows = []
    for prefix, split in _SPLITS:
        for key, value in config.metrics.items():
            if key.startswith(f"{prefix}_") and isinstance(value, float):
                rows.append(f"| {split} | {key.removeprefix(prefix + '_')} | {value:.4f} |")
    if not rows:
        return "No evaluation metrics were recorded with these weights."
    epoch = config.metrics.get("epoch")
    when = f" (epoch {epoch})" if epoch is not None else ""
    return "\n".join([f"Metrics of these weights{when}:", "", "| split | metric | value |",
                      "|---|---|---|", *rows])


def usage_snippets(repo_id: str) -> tuple[str, str]:
    """The Python snippet and the command line the card shows (tests run both)."""
    python = f"""import rsfm

model = rsfm.from_pretrained("{repo_id}")  # eval mode, weights and config.json from the repo
print(model.input_spec.band_names, model.input_spec.class_names)
rsfm.predict(model, "scene.tif", "prediction.tif")  # class map on the scene's grid"""
    cli = f"rsfm predict {repo_id} scene.tif -o prediction.tif"
    return python, cli


def _model_section(config: SavedConfig, lora_only: bool) -> str:
    m, card = config.model, config.card
    base = base_model_repo(config)
    lines = [f"- Task: {m.task}; head `{m.head}`; {m.num_classes} classes.",
             f"- Backbone: `{m.backbone}` ({card.family})."]
    if base is None:
        lines.append("- Trained from scratch: no pretrained backbone weights.")
    elif m.weights is not None:
        lines.append(f"- Started from the backbone weights `{m.weights}`.")
    else:
        rev = f" at revision `{card.revision}`" if card.revision else ""
        lines.append(f"- Started from the pretrained checkpoint [`{card.repo_id}`]"
                     f"(https://huggingface.co/{card.repo_id}) (`{card.filename}`{rev}).")
    if config.lora is not None:
        lo = config.lora
        targets = (f"targets {list(lo.target_modules)}" if lo.target_modules
                   else "the backbone card's default targets")
        where = ("This repo holds the adapter (peft format, `adapter/`) and the neck/head "
                 "weights; `from_pretrained` downloads the base checkpoint and applies them."
                 if lora_only else "The weights here have the adapter merged in.")
        lines.append(f"- Fine-tuned with LoRA (r={lo.r}, alpha={lo.alpha:g}, {targets}). "
                     + where)
    lines.append(f"- Written by rsfm {config.rsfm_version}.")
    return "\n".join(lines)


def _limitations(config: SavedConfig) -> str:
    spec = config.input
    data = ", ".join(f"`{d}`" for d in config.datasets) or "the data in `recipe.yaml`"
    items = [
        (f"- Trained on {data}. Accuracy on other regions, seasons, resolutions or processing "
        "levels is unknown; check it on your own labelled samples first."),
        (f"- Expects exactly the {len(spec.bands)} band(s) above with the stated scaling and "
        "normalisation. Other sensors, band orders or value units give wrong maps without an error."),
        "- The metrics come from splits of the training data, not from an independent benchmark.",
    ]
    if spec.tile_size:
        items.append(f"- Predictions on tiles much smaller than {spec.tile_size} px lose context.")
    return "\n".join(items)


def _citation(config: SavedConfig) -> str:
    text = config.card.citation
    if not text:  # configs written before cards recorded their citation
        card = all_cards().get(config.card.name)
        text = card.citation if card is not None else ""
    if not text.strip():
        return ""
    return (f"\n## Citation\n\nThe backbone (`{config.card.name}`):\n\n```bibtex\n"
            f"{text.strip()}\n```\n")


def model_card(config: SavedConfig, repo_id: str, *, lora_only: bool = False,
               description: str = "") -> ModelCard:
    """The model card of a saved model.

    Args:
        config: The folder's :class:`SavedConfig`.
        repo_id: Where the card will live (``ORG/NAME``, or a local folder for local cards);
            the usage lines load from it.
        lora_only: The repo holds the LoRA adapter and head only (``base_model_relation:
            adapter``); else the full weights (``finetune`` when a pretrained base exists).
        description: First paragraph (the recipe's ``description``).

    Returns:
        A ``huggingface_hub.ModelCard`` (``str(card)`` is the README; ``card.save(path)``).
    """
    name = repo_id.rstrip("/").split("/")[-1]
    m = config.model
    data = _card_data(config, name, lora_only)
    python, cli = usage_snippets(repo_id)
    intro = description or (f"A {m.task} model for remote-sensing imagery: `{m.backbone}` backbone "
                            f"with a `{m.head}` head, trained with "
                            "[rsfm](https://github.com/rsfm-dev/rsfm).")
    body = f"""
# {name}

{intro}

## Model

{_model_section(config, lora_only)}

## Input

{_input_section(config.input)}

## Classes

{_classes_section(config)}

## Evaluation

{_metrics_section(config)}

## Usage

```python
{python}
```

From the command line:

```bash
{cli}
```

`scene.tif` is a GeoTIFF with the bands above; tiles, nodata and normalisation are handled as
recorded in `config.json`.

## Limitations

{_limitations(config)}
{_citation(config)}"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")

