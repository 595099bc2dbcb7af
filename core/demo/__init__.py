"""Demo data: a seeded story of four customers, written through the core's own commands."""

from core.demo.seed import SUPPORT_EMAIL, SeedStory, seed_demo

__all__ = ["SUPPORT_EMAIL", "SeedStory", "seed_demo"]
