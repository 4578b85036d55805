"""The sources mesbot reads a tenant from: the demo simulator (integration/demo/) and Lookout's
Mobile Risk API v2 (issue 9: `lookout_events.py` reads its stream events so far)."""
