"""CloudFormation blueprints, installed as package data of `controller.blueprints`."""
