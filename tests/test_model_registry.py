"""The allow-list: only listed models load, the default is never evicted, no server path leaks."""

import json

import pytest
from helpers_models import save_tiny_model

from brain_tumor.model_registry import ModelNotAllowed, ModelRegistry, parse_allowed, parse_switch, public_name
from brain_tumor.modeling import ModelLoadError


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    return {name: save_tiny_model(root / name) for name in ("default", "a", "b")}


def test_parse_allowed():
    assert parse_allowed(None) == [] and parse_allowed(" , ") == []
    assert parse_allowed("owner/a, /srv/models/b ,") == ["owner/a", "/srv/models/b"]


def test_parse_switch():
    assert parse_switch(None, default=True) and not parse_switch(" ", default=False)
    assert not parse_switch("0", default=True) and not parse_switch("Off", default=True)
    assert parse_switch("yes", default=False) and parse_switch("1", default=False)
    with pytest.raises(ValueError, match="got 'maybe'"):
        parse_switch("maybe", default=True)


def test_only_the_default_model_is_compiled_in_the_background(folders):
    registry = ModelRegistry(folders["default"], [folders["a"]], compile_default=True)
    default = registry.get(None).predictor  # served at once, eager until the thread is done
    registry.compiling.join(timeout=300)
    assert default.compiled and registry.get(None).predictor is default
    assert not registry.get("a").predictor.compiled  # a visitor's switch is not kept waiting
    eager = ModelRegistry(folders["default"])
    assert eager.compiling is None and not eager.get(None).predictor.compiled


def test_public_names_hide_folder_paths():
    assert public_name("owner/model") == "owner/model"
    assert public_name("/srv/secret/models/b/") == "b" and public_name("~/m") == "m" and public_name("./x") == "x"


def test_no_allow_list_means_no_switching(folders):
    registry = ModelRegistry(folders["default"])
    assert registry.names == ["default"] and not registry.switchable
    assert registry.get(None) is registry.get("default")
    with pytest.raises(ModelNotAllowed, match="not an allowed model"):
        registry.get(folders["a"])  # a real folder, yet not listed


def test_default_is_pinned_and_others_are_lru(folders):
    registry = ModelRegistry(folders["default"], [folders["a"], folders["b"]], keep=1)
    default = registry.get(None)
    first_a = registry.get("a")
    assert registry.get("a") is first_a  # kept while it is the most recent
    registry.get("b")  # evicts a, never the default
    assert registry.get("a") is not first_a
    for name in ("b", "a", "b", "a"):
        registry.get(name)
    assert registry.get(None) is default and registry.get("default") is default


@pytest.mark.parametrize("asked", ["/etc", "../models", "facebook/convnext-tiny-224", "", "default/../a"])
def test_anything_unlisted_is_just_not_allowed(folders, asked):
    registry = ModelRegistry(folders["default"], [folders["a"]])
    if not asked:  # empty means the default
        assert registry.get(asked) is registry.get(None)
        return
    with pytest.raises(ModelNotAllowed) as caught:
        registry.get(asked)
    assert "not an allowed model" in str(caught.value) and "/" not in str(caught.value).split("Allowed:")[1]


def test_listed_model_that_fails_to_load_names_no_path(folders, tmp_path):
    registry = ModelRegistry(folders["default"], [str(tmp_path / "secret-dir" / "gone")])
    with pytest.raises(ModelLoadError) as caught:
        registry.get("gone")
    assert "could not be loaded" in str(caught.value) and str(tmp_path) not in str(caught.value)


def test_broken_default_keeps_serving_with_a_pathless_message(tmp_path):
    registry = ModelRegistry(str(tmp_path / "hidden" / "nothing-here"))
    assert registry.start_error and str(tmp_path) not in registry.start_error
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        registry.get(None)


def test_same_folder_names_are_told_apart(tmp_path):
    one, two = save_tiny_model(tmp_path / "x" / "m"), save_tiny_model(tmp_path / "y" / "m")
    registry = ModelRegistry(one, [two])
    assert registry.names == ["m", "m (2)"]
    assert registry.get("m (2)").predictor is not registry.get("m").predictor


def test_localization_figures_read_from_the_folder(folders, tmp_path):
    folder = save_tiny_model(tmp_path / "with-figures")
    figures = {"method": "Grad-CAM", "pointing_game": 0.9}
    (tmp_path / "with-figures" / "localization.json").write_text(json.dumps(figures))
    assert ModelRegistry(folder).get(None).localization == figures
    assert ModelRegistry(folders["default"]).get(None).localization is None
