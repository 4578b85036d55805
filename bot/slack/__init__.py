"""The Slack front end: `/lookout` over HTTP or Socket Mode, Block Kit replies, confirm buttons, App Home."""
