"""Every test here gets its own registry of running stacks (OBJFS_RUN_DIR) and cleanup."""

from tests.commands.conftest import leftovers, run_dir

__all__ = ["leftovers", "run_dir"]
