"""The Lookout MES ↔ Intune integration: domain rules and the ports to the outside.

Nothing here imports Slack, SMTP or the bot; front ends call in, rules come out.
"""
