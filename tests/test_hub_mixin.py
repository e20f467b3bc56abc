"""``RsfmHubMixin``: ``Model.from_pretrained`` / ``model.save_pretrained`` / ``model.push_to_hub`` in
``huggingface_hub.ModelHubMixin``'s shape, delegating to the rsfm folder format.

``HubModel`` is ``RsfmModel`` with the mixin added, as ``rsfm.Model`` does
(``class RsfmModel(nn.Module, RsfmHubMixin)``)."""

from __future__ import annotations

import json

import pytest
import torch
from hub_utils import SECRET, RecordingApi, publish, remove_repo, saved_run
from huggingface_hub import ModelCard, ModelHubMixin

from rsfm.hub import Model, from_pretrained
from rsfm.models.model import RsfmModel

HubModel = Model


def _hub_model(model) -> HubModel:
    return HubModel(model.backbone, model.neck, model.head, model.config, model.input_spec).eval()


@pytest.fixture
def folder(tmp_path):
    return saved_run(tmp_path / "run", datasets=["org/floods"])


def _out(model, x):
    with torch.no_grad():
        return model(x)


def test_mixin_shape():
    assert issubclass(HubModel, ModelHubMixin)
    for name in ("from_pretrained", "save_pretrained", "push_to_hub"):
        assert callable(getattr(HubModel, name))


def test_save_pretrained_method_writes_the_rsfm_folder_and_card(folder, tmp_path):
    loaded = from_pretrained(folder)
    model = _hub_model(loaded)
    model.saved_config = loaded.saved_config  # what from_pretrained gives an RsfmModel
    assert model.save_pretrained(tmp_path / "out") is None
    out = tmp_path / "out"
    # rsfm's config.json, not huggingface_hub's generic one
    assert (out / "config.json").read_bytes() == (folder / "config.json").read_bytes()
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "rsfm" and card.data.datasets == ["org/floods"]
    assert f'rsfm.from_pretrained("{out}")' in card.text


def test_from_pretrained_class_method(folder):
    model = HubModel.from_pretrained(folder)
    assert isinstance(model, RsfmModel) and not model.training
    assert model.saved_config == from_pretrained(folder).saved_config
    x = torch.randn(1, 2, 64, 64)
    torch.testing.assert_close(_out(model, x), _out(from_pretrained(folder), x), rtol=0, atol=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        HubModel.from_pretrained(folder, hidden_size=3)


def test_from_pretrained_hub_repo_offline(folder, tmp_path, hub_cache):
    from rsfm.hub import push

    api = RecordingApi()
    push(folder, "org/mixin", api=api)
    publish(hub_cache, "org/mixin", api.commits[0]["files"], tmp_path / "stage")
    try:
        model = HubModel.from_pretrained("org/mixin", local_files_only=True)
        assert model.saved_config.datasets == ("org/floods",)
    finally:
        remove_repo(hub_cache, "org/mixin")


def test_push_to_hub_method(folder, caplog, capsys):
    model = _hub_model(from_pretrained(folder))
    api = RecordingApi()
    info = model.push_to_hub("org/pushed", token=SECRET, branch="dev", api=api,
                             metrics={"val_miou": 0.5})
    assert info == "commit-info" and api.branches == [("org/pushed", "dev")]
    files = api.commits[0]["files"]
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    cfg = json.loads(files["config.json"])
    assert cfg["metrics"] == {"val_miou": 0.5}
    assert 'rsfm.from_pretrained("org/pushed")' in files["README.md"].decode()
    captured = capsys.readouterr()
    blobs = [*files.values(), captured.out.encode(), captured.err.encode(), caplog.text.encode()]
    assert not any(SECRET.encode() in b for b in blobs)


def test_save_pretrained_with_push(folder, tmp_path):
    model = _hub_model(from_pretrained(folder))
    api = RecordingApi()
    info = model.save_pretrained(tmp_path / "out", repo_id="org/both", push_to_hub=True, api=api)
    assert info == "commit-info" and api.commits[0]["repo_id"] == "org/both"
    assert (tmp_path / "out" / "config.json").is_file()


def test_mixin_model_copies_and_pickles(folder, tmp_path):
    import copy

    model = _hub_model(from_pretrained(folder))
    twin = copy.deepcopy(model)
    x = torch.randn(1, 2, 64, 64)
    torch.testing.assert_close(_out(twin, x), _out(model, x), rtol=0, atol=0)
    torch.save(model, tmp_path / "m.pt")
    back = torch.load(tmp_path / "m.pt", weights_only=False)
    torch.testing.assert_close(_out(back, x), _out(model, x), rtol=0, atol=0)


def test_public_constructors_build_models_with_hub_methods(folder, tmp_path):
    """rsfm.create_model / rsfm.from_pretrained / rsfm.Model.from_pretrained give rsfm.Model."""
    import rsfm

    fresh = rsfm.create_model("segmentation", "resnet18", head="fcn", num_classes=2,
                              bands=["RED", "GREEN", "BLUE"])
    assert isinstance(fresh, rsfm.Model) and isinstance(fresh, RsfmModel)
    fresh.save_pretrained(tmp_path / "fresh")
    for loaded in (rsfm.from_pretrained(tmp_path / "fresh"),
                   rsfm.Model.from_pretrained(tmp_path / "fresh")):
        assert type(loaded) is rsfm.Model and callable(loaded.push_to_hub)
