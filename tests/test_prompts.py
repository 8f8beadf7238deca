"""Templates are files whose variables are checked when they load."""

from __future__ import annotations

import pytest

import prompts
from prompts import VARIABLES, Template


@pytest.mark.parametrize("name", sorted(VARIABLES))
@pytest.mark.parametrize("language", ["id", "en"])
def test_every_template_loads_in_both_languages(name: str, language: str) -> None:
    template = prompts.load(name, language)
    assert template.variables == VARIABLES[name]
    assert template.text.strip()


def test_languages_differ() -> None:
    assert prompts.load("refusal", "id").render() != prompts.load("refusal", "en").render()
    assert "Menurut artikel" in prompts.load("extractive_frame", "id").render(sentences="x")


def test_variable_mismatch_fails_at_load_and_render() -> None:
    with pytest.raises(ValueError, match="variables"):
        Template("t", "Hello {name} and {other}", frozenset({"name"}))
    t = Template("t", "Hello {name}", frozenset({"name"}))
    with pytest.raises(ValueError):
        t.render()
    assert t.render(name="Ani") == "Hello Ani"


def test_unknown_template() -> None:
    with pytest.raises(KeyError):
        prompts.load("nope")
