"""This repository's settings without ``LOGGING``, as in a project made by ``django-admin startproject``."""

from demo_project.settings import *  # noqa: F403

del LOGGING  # noqa: F821
