"""The built-in simulated tenant (`MESBOT_SOURCE=demo`): a deterministic Contoso directory and fleet."""
