"""The demo tenant's threat mix: which classification a new threat has, and the details a phone
reports with it. The seed (fleet.py) and the simulator draw from the same mix, so a simulated day
looks like the seeded history."""

import random
from bisect import bisect
from itertools import accumulate

from integration.catalogue import CATALOGUE
from integration.demo import data
from integration.demo.draws import pick

Details = tuple[str | None, str | None, str | None, str | None, str | None]  # app, package, path, ssid, url

_NAMES = list(data.CLASSIFICATION_WEIGHTS)
_CUM_WEIGHTS = list(accumulate(data.CLASSIFICATION_WEIGHTS.values()))


def classification(rng: random.Random) -> str:
    """A classification drawn with the seed's relative frequencies (`data.CLASSIFICATION_WEIGHTS`)."""
    return _NAMES[bisect(_CUM_WEIGHTS, rng.random() * _CUM_WEIGHTS[-1])]


def threat_type(name: str) -> str:
    """The threat `type` Lookout reports for a classification, by its category."""
    return data.THREAT_TYPES[CATALOGUE[name].category]


def details(rng: random.Random, category: str, app: str | None = None) -> Details:
    """What the phone reports with a threat of `category`: the app (`app`, else one of the seed's app
    names, some of them hostile), the Wi-Fi network, or the URL."""
    app_name = package = path = ssid = url = None
    if category == "app":
        app_name = app or pick(rng, data.APP_NAMES)
        package = f"com.example.app{1 + int(999 * rng.random())}"
        path = f"package://{package}"
    elif category == "network":
        ssid = pick(rng, data.SSIDS)
    elif category == "web":
        url = pick(rng, data.URLS)
    return app_name, package, path, ssid, url
