"""This repository's own Django project: the demo, the tests and make serve run it.

It is not part of the app that pip installs (the wheel holds ``reporting``,
``scheduler`` and ``views_sql``): a project that uses the app has settings of its own.
"""
