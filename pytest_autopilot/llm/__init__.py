"""Talking to models: the litellm client, model profiles, cassettes and the scripted stand-in."""
