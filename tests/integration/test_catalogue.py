"""The classification catalogue: every Lookout name, a category, a default, and who chose it."""

import re
from pathlib import Path

import pytest

from integration.catalogue import CATALOGUE, classification_name
from integration.errors import InvalidInput
from integration.levels import RiskLevel

DOMAIN = Path(__file__).parents[3] / "shared" / "DOMAIN.md"


def _names_in_domain_md() -> set[str]:
    text = DOMAIN.read_text()
    section = text[
        text.index("Classification names (API spelling)") : text.index("## Lookout Mobile Risk API v2")
    ]
    return set(re.findall(r"`([A-Z_]+)`", section))


@pytest.mark.skipif(not DOMAIN.exists(), reason="../shared/DOMAIN.md is not beside the checkout")
def test_every_classification_in_domain_md_is_in_the_catalogue() -> None:
    assert _names_in_domain_md() == set(CATALOGUE)


def test_only_out_of_date_os_is_lookouts_documented_default() -> None:
    lookout = {name for name, entry in CATALOGUE.items() if entry.default_source == "lookout"}
    assert lookout == {"OUT_OF_DATE_OS"}
    assert CATALOGUE["OUT_OF_DATE_OS"].default_risk is RiskLevel.MEDIUM
    assert {entry.default_source for entry in CATALOGUE.values()} == {"lookout", "mesbot"}


def test_categories() -> None:
    assert {entry.category for entry in CATALOGUE.values()} == {"app", "device", "network", "web"}
    assert CATALOGUE["ACTIVE_MITM"].category == "network"
    assert CATALOGUE["PHISHING_CONTENT"].category == "web"


@pytest.mark.parametrize(
    ("text", "name"),
    [("trojan", "TROJAN"), ("Out-Of-Date-OS", "OUT_OF_DATE_OS"), (" ROOT_JAILBREAK ", "ROOT_JAILBREAK")],
)
def test_names_are_case_insensitive_on_input(text: str, name: str) -> None:
    assert classification_name(text) == name


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(InvalidInput, match="Did you mean `TROJAN`"):
        classification_name("TROJEN")
    with pytest.raises(InvalidInput, match="risk list"):
        classification_name("x" * 5000)
