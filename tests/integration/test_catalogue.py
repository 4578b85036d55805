"""The classification catalogue: every Lookout name, a category, a default, and who chose it."""

import pytest

from integration.catalogue import CATALOGUE, classification_name
from integration.errors import InvalidInput
from integration.levels import RiskLevel
from tests.integration.domain_facts import FACTS

DOMAIN_CATEGORY = {name: group for group, names in FACTS["classifications"].items() for name in names}


def test_the_catalogue_has_exactly_domain_mds_classifications_in_their_groups() -> None:
    assert {name: entry.category for name, entry in CATALOGUE.items()} == DOMAIN_CATEGORY


def test_only_lookouts_documented_defaults_say_lookout() -> None:
    lookout = {
        name: entry.default_risk for name, entry in CATALOGUE.items() if entry.default_source == "lookout"
    }
    assert lookout == {name: RiskLevel(level) for name, level in FACTS["lookout_defaults"].items()}
    assert {entry.default_source for entry in CATALOGUE.values()} == {"lookout", "mesbot"}


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
