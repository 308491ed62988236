"""The example config, installed as package data of `controller.examples` (the demo reads it)."""
