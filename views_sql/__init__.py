"""The SQL of the reporting views and functions: one file per object and version (see docs/architecture.md).

A package only so that ``pip install`` ships the files with the ``reporting`` app.
"""
