"""The threat classification catalogue: every Lookout classification, its category and default risk.

Lookout documents exactly one default: `OUT_OF_DATE_OS` = medium. Every other default below is
mesbot's own choice (a reasonable starting point an admin can change with `risk set`), and
`default_source` says so for each entry.
"""

from dataclasses import dataclass
from difflib import get_close_matches

from integration.errors import InvalidInput
from integration.levels import RiskLevel
from integration.validation import show

H, M, L, N = RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW, RiskLevel.NONE


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    category: str  # app | device | network | web
    default_risk: RiskLevel
    default_source: str  # "lookout" (documented by Lookout) or "mesbot" (our choice)


_OURS: dict[str, tuple[str, RiskLevel]] = {
    # app / file
    "ADWARE": ("app", L),
    "APP_DROPPER": ("app", H),
    "BACKDOOR": ("app", H),
    "BOT": ("app", H),
    "CHARGEWARE": ("app", M),
    "CLICK_FRAUD": ("app", M),
    "CONNECTIVITY": ("app", L),
    "DATA_LEAK": ("app", M),
    "DENYLISTED_APP": ("app", M),
    "EXPLOIT": ("app", H),
    "NON_APP_STORE_SIGNER": ("app", L),
    "RISKWARE": ("app", L),
    "ROOT_ENABLER": ("app", H),
    "SIDELOADED_APP": ("app", L),
    "SPAM": ("app", L),
    "SPYWARE": ("app", H),
    "SURVEILLANCEWARE": ("app", H),
    "TOLL_FRAUD": ("app", M),
    "TROJAN": ("app", H),
    "VIRUS": ("app", H),
    "VULNERABILITY": ("app", M),
    "WORM": ("app", H),
    # device / OS / configuration
    "ROOT_JAILBREAK": ("device", H),
    "OUT_OF_DATE_ASPL": ("device", L),
    "NO_DEVICE_LOCK": ("device", M),
    "UNENCRYPTED": ("device", M),
    "DEVELOPER_MODE_ENABLED": ("device", L),
    "USB_DEBUGGING_ENABLED": ("device", L),
    "UNKNOWN_SOURCES_ENABLED": ("device", L),
    "PCP_PAUSED": ("device", L),
    # network
    "ACTIVE_MITM": ("network", H),
    "ROGUE_WIFI": ("network", M),
    "PORT_SCAN": ("network", L),
    "GATEWAY_ADDRESS_CHANGE": ("network", L),
    "VPN_NOT_ENABLED": ("network", N),
    # web content
    "PHISHING_CONTENT": ("web", M),
    "MALICIOUS_CONTENT": ("web", H),
    "UNAUTHORIZED_CONTENT": ("web", L),
    "DENYLISTED_CONTENT": ("web", L),
}

CATALOGUE: dict[str, CatalogueEntry] = {
    "OUT_OF_DATE_OS": CatalogueEntry("OUT_OF_DATE_OS", "device", M, "lookout"),
    **{name: CatalogueEntry(name, category, risk, "mesbot") for name, (category, risk) in _OURS.items()},
}


def classification_name(text: str) -> str:
    """The catalogue name for user input (case-insensitive, `-` accepted for `_`)."""
    name = text.strip().upper().replace("-", "_")
    if name not in CATALOGUE:
        hint = _closest(name)
        raise InvalidInput(
            f"Unknown classification `{show(text, 40)}`."
            + (f" Did you mean `{hint}`?" if hint else "")
            + " `risk list` shows all of them."
        )
    return name


def _closest(name: str) -> str | None:
    if len(name) > 40:
        return None
    matches = get_close_matches(name, CATALOGUE, n=1, cutoff=0.75)
    return matches[0] if matches else None
