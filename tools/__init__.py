"""The `mqnode` host tools: one command for flashing, deploying, provisioning and watching nodes."""
