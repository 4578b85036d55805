"""The front ends: the command grammar and its handlers, the Slack app, `mesbot ask`/`shell`, the CLI."""
