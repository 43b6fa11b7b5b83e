"""The tested range of Ray, Lightning and Optuna, read from lightsweep's own metadata."""

from __future__ import annotations

from tuning.driver.versions import untested_versions

REQUIRES = ["ray[default,train,tune]<2.61,>=2.60", "lightning<2.7,>=2.6", "optuna<5.1,>=5.0",
            "wandb>=0.17", 'pytest>=8; extra == "dev"']


def test_a_release_outside_the_tested_range_is_named_with_the_range() -> None:
    versions = {"ray": "2.61.0", "lightning": "2.6.6", "optuna": "4.5.0", "wandb": "0.1"}
    assert untested_versions(REQUIRES, versions.get) == [
        "ray 2.61.0 (tested: <2.61,>=2.60)", "optuna 4.5.0 (tested: <5.1,>=5.0)"]


def test_the_tested_stack_is_within_its_ranges() -> None:
    # pyproject.toml's ranges hold the versions constraints.txt installs for the tests.
    assert untested_versions() == []


def test_packages_not_installed_are_not_reported() -> None:
    assert untested_versions(REQUIRES, lambda name: None) == []
