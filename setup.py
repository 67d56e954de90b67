"""Ships the repository's top-level suites/ inside the package as `harness._builtin_suites` (the rest is in pyproject.toml).

pyproject.toml alone cannot both discover the `harness` packages and map one extra package onto a folder outside
`harness/` (`packages.find` and `package-dir` do not combine), so the package list is computed here.
"""

from setuptools import find_namespace_packages, setup

SUITES = "harness._builtin_suites"
setup(
    packages=[
        *find_namespace_packages(include=["harness", "harness.*"], exclude=["*.__pycache__"]),
        SUITES,
        *(f"{SUITES}.{name}" for name in find_namespace_packages(where="suites", exclude=["*.__pycache__", "__pycache__"])),
    ],
    package_dir={SUITES: "suites"},
)
