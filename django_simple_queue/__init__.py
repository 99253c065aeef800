"""A task queue for Django that uses the project's database as the broker."""

__version__ = "1.0.0"
