"""fsck and gc given a wrong URL, credentials, or a container without a volume: one line, exit 2."""

from __future__ import annotations

import pytest

from tests.deployment import deployed
from tests.fsck.helpers import objfs
from tests.storage.backends import fresh_container, swift_url

VERBS = ["fsck", "gc"]


def _url(case, deployment, swift_service):
    if case == "wrong scheme":
        return "ftp://example.com/container"
    if case == "unreachable swift":
        return swift_url({}, "c", auth_url="http://127.0.0.1:9/auth/v1.0", user="a:b", key="k")
    if case == "wrong credentials":
        info = swift_service
        return swift_url(info, fresh_container(), auth_url=info["auth_url"], user=info["user"],
                         key="wrong")  # fmt: skip
    if case == "missing credentials":
        return f"swift://{fresh_container()}"
    if case == "absent container":
        return f"file://{deployment.tmp / 'no-such-dir'}"
    url = deployment.volume_url("file")  # "empty container": exists, holds no volume
    (deployment.tmp / url.rsplit("/", 1)[1]).mkdir()
    return url


CASES = {
    "wrong scheme": "ftp",
    "unreachable swift": "cannot reach",
    "wrong credentials": "refused the credentials",
    "missing credentials": "swift",
    "absent container": "no such container",
    "empty container": "no volume vol",
}


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(
    request, tmp_path, monkeypatch, swift_service, verb, case
):
    for variable in ("ST_AUTH", "ST_USER", "ST_KEY", "OS_STORAGE_URL", "OS_AUTH_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OBJFS_CREDENTIALS", str(tmp_path / "no-credentials.toml"))
    with deployed(request, tmp_path) as deployment:
        done = objfs(deployment, verb, _url(case, deployment, swift_service))
        assert done.returncode == 2, (done.stdout, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"objfs {verb}: "), done.stderr
        assert CASES[case] in lines[0], lines[0]
        assert not done.stdout
