"""The installed objfs version, one place for every daemon's --version."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("objfs")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"
