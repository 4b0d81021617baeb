"""Hub users whose names are not ordinary Unix accounts on the cluster: no
account at all, a system account, the hub's own. Each is refused before
any command runs as them, with a message for the user and no traceback."""

from __future__ import annotations

import getpass
import pwd

import pytest

from batchhub.testing.hub import RealHub, login

pytestmark = pytest.mark.hub

NO_ACCOUNT = "bh-no-account"


def spawn_failure(hub: RealHub, user: str) -> tuple[int, str]:
    """Start ``user``'s server: the status of the hub's answer and the
    message the user gets (from the answer, or from the progress stream)."""
    hub.api("POST", "users", json={"usernames": [user]})
    r = hub.api("POST", f"users/{user}/server", json={"user_options": {}})
    assert "Traceback" not in r.text
    if r.status_code in (201, 202):  # the failure comes through the progress stream
        events = hub.progress_events(user).join(60)
        assert events and events[-1].get("failed"), events
        return r.status_code, events[-1]["message"]
    return r.status_code, r.json()["message"]


def test_a_user_without_an_account_is_told_to_ask_the_admins(fake_hub: RealHub) -> None:
    hub = fake_hub
    with pytest.raises(KeyError):
        pwd.getpwnam(NO_ACCOUNT)
    before = hub.live_jobs()
    said = f"there is no account named {NO_ACCOUNT} on the cluster; ask the admins"

    status, message = spawn_failure(hub, NO_ACCOUNT)
    assert said in message, message
    assert status == 403, (status, message)
    assert "KeyError" not in message and "getpwnam" not in message

    # what the user sees in the browser: the message, no traceback page
    session = login(hub.url, NO_ACCOUNT, hub.password)
    page = session.get(f"{hub.url}/hub/spawn-pending/{NO_ACCOUNT}", timeout=30)
    assert said in page.text, page.text
    assert "Traceback" not in page.text and "KeyError" not in page.text
    assert hub.server(NO_ACCOUNT) is None
    assert hub.live_jobs() == before
    assert "getpwnam" not in hub.log_text()


@pytest.mark.parametrize("name", ["daemon", getpass.getuser()])
def test_system_accounts_and_the_hubs_own_are_refused(fake_hub: RealHub, name: str) -> None:
    """Here the hub runs as root: a hub user called root or daemon gets no
    server, and nothing runs as them."""
    hub = fake_hub
    before = hub.live_jobs()
    status, message = spawn_failure(hub, name)
    assert status == 403, (status, message)
    assert f"the account {name} cannot run servers here" in message, message
    assert "ask the admins" in message
    assert hub.server(name) is None
    assert hub.live_jobs() == before
