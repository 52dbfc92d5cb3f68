"""Weights this project ships, with their model cards: found here without importing torch (web pages name them)."""

from pathlib import Path

GALAXY = "galaxy"  # the name that asks for the file below, wherever weights are named
GALAXY_WEIGHTS = Path(__file__).resolve().with_name("galaxy-resnet18.pt")
