"""The staff admin for django-simple-queue's Task model."""
