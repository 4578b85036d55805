"""The channels mesbot sends on: e-mail (`email.py`) and Slack direct messages (`slack.py`)."""
