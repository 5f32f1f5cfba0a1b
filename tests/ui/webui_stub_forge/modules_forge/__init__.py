"""A stand-in for Forge's ``modules_forge`` package: its presence is how a WebUI is told to be Forge."""
