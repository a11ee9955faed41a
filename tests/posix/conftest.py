from tests.mounts import *  # noqa: F403
