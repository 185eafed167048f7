"""Importing this package registers every topic's exercises: one module per topic, found automatically."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
