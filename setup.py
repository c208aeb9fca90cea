"""Build hook: a build regenerates ``weave_client/_sync`` from ``weave_client/_async``.

Metadata lives in pyproject.toml. The twin rules (unasync's transform plus the prose
pass) are defined once, in ``scripts/unasync_rules.py``.
"""

import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))

import unasync_rules

setup(cmdclass={"build_py": unasync_rules.build_py_class()})
