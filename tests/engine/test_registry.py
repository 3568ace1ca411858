import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from search.engine import registry


def test_every_classifier_and_regressor_by_name() -> None:
    names = registry.names()
    for expected in ["RandomForestClassifier", "SVC", "LogisticRegression", "Ridge", "GradientBoostingRegressor"]:
        assert expected in names
    assert len(registry.names("classifier")) > 30
    assert len(registry.names("regressor")) > 30
    assert "StandardScaler" in registry.names("transformer")


def test_meta_estimators_needing_arguments_are_left_out() -> None:
    assert "VotingClassifier" not in registry.names()
    assert "StackingRegressor" not in registry.names()


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(KeyError, match="RandomForestClassifier"):
        registry.lookup("RandomForrestClassifier")


def test_build_single_and_pipeline() -> None:
    rf = registry.build((("RandomForestClassifier", "sklearn.ensemble"),), {"n_estimators": 7})
    assert isinstance(rf, RandomForestClassifier) and rf.n_estimators == 7
    pipe = registry.build((("StandardScaler", "sklearn.preprocessing"), ("SVC", "sklearn.svm")), {"svc__C": 3.0})
    assert isinstance(pipe, Pipeline)
    assert [name for name, _ in pipe.steps] == ["standardscaler", "svc"]
    assert pipe.get_params()["svc__C"] == 3.0


def test_load_class_refuses_anything_outside_sklearn() -> None:
    with pytest.raises(ValueError, match="not part of scikit-learn"):
        registry.load_class("os", "system")
    with pytest.raises(ValueError, match="not a scikit-learn estimator"):
        registry.load_class("sklearn.model_selection", "train_test_split")


def test_every_registered_estimator_can_be_built_from_its_public_module() -> None:
    from search.engine import registry

    for name in registry.names():
        info = registry.lookup(name)
        assert not any(part.startswith("_") for part in info.module.split(".")), info
        assert type(registry.build(((info.name, info.module),))).__name__ == name
