"""Jinja2 templates for e-mail (HTML + text) and Slack message texts, shipped inside the package so
`mesbot` works from any directory."""
