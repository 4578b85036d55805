"""DOMAIN.md's facts that tests check the code against, from the in-repo copy `domain_facts.yaml`."""

from pathlib import Path
from typing import Any

import yaml

FACTS: dict[str, Any] = yaml.safe_load(Path(__file__).with_name("domain_facts.yaml").read_text())
