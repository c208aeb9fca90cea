"""Build hook: the unasync ``build_py`` cmdclass regenerates ``weave_client/_sync``.

Metadata lives in pyproject.toml. The replacement table is shared with
``scripts/unasync`` through ``scripts/unasync_rules.py``.
"""

import os
import sys

import unasync
from setuptools import setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))

import unasync_rules

setup(cmdclass={"build_py": unasync.cmdclass_build_py(rules=unasync_rules.build_rules())})
