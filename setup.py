"""Package discovery with one import name: each stage's folder is installed as ``stylestudy.<stage>``.

The folders stay at the top of the repository (``engine/``, ``evalserver/``, ``analysis/``,
``studies/``); their sub-packages are found, not listed, so a new one cannot be left out of the
wheel.  Everything else about the package is in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "stylestudy": "stylestudy",
    "stylestudy.engine": "engine",
    "stylestudy.evalserver": "evalserver",
    "stylestudy.analysis": "analysis",
    "stylestudy.studies": "studies",
}

packages = [name + sub for name, folder in FOLDERS.items() for sub in ["", *("." + p for p in find_packages(folder))]]

setup(packages=packages, package_dir=FOLDERS)
