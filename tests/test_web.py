"""The subscriber web app, running under a real uvicorn server on port 0, over real HTTP."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from web_support import bound_socket, running

from newsletter.config import Config, WebConfig
from newsletter.models import Interest, Paper, Subscriber
from newsletter.prefs import apply_prefs, validate_prefs
from newsletter.signing import Links, secret_for, sign
from newsletter.store import ACTIVE, SUPPRESSED, UNSUBSCRIBED, Store
from newsletter.web import create_app

SECRET = "test-secret-key-for-web"
ALICE = Subscriber(
    email="alice@example.org",
    name="Alice",
    schedule="daily 07:00",
    max_papers=5,
    interests=(
        Interest(name="Agents", keywords=("tool use", "planning"), categories=("cs.AI",)),
        Interest(name="Vision", categories=("cs.CV",), max_papers=2, trending=True),
    ),
)
BOB = Subscriber(email="bob@example.org", interests=(Interest(name="Physics", keywords=("q",)),))


@dataclass
class Live:
    base: str
    store: Store
    config: Config
    links: Links  # Alice's signed links

    def links_for(self, email: str) -> Links:
        return Links(self.base, SECRET, email)


def make_config(tmp_path: Path, base_url: str, secret: str | None = SECRET) -> Config:
    return Config(
        path=tmp_path / "subscribers.yaml",
        state=str(tmp_path / "state.db"),
        sources=(),
        subscribers=(ALICE, BOB),
        web=WebConfig(base_url=base_url),
        secret_key=secret,
    )


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[Live]:
    sock, base = bound_socket()
    config = make_config(tmp_path, base)
    with Store(config.state) as store, running(create_app(config, store), sock):
        yield Live(base, store, config, Links(base, SECRET, ALICE.email))


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, follow_redirects=False) as c:
        yield c


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert m, f"no hidden field {name!r} in page"
    return m.group(1)


def form_action(html: str, button_id: str) -> str:
    """The action of the form holding the button with this id (relative, as a browser sees)."""
    for form in re.findall(r"<form.*?</form>", html, flags=re.S):
        if f'id="{button_id}"' in form:
            return re.search(r'action="([^"]*)"', form).group(1)  # type: ignore[union-attr]
    raise AssertionError(f"no form with button {button_id!r}")


def flip(token: str, index: int = 5) -> str:
    """The token with one character changed."""
    c = token[index]
    return token[:index] + ("A" if c != "A" else "B") + token[index + 1 :]


# -- unsubscribe ---------------------------------------------------------------------------


def test_unsubscribe_get_only_confirms(live: Live, client: httpx.Client) -> None:
    r = client.get(live.links.unsubscribe)
    assert r.status_code == 200
    assert "Unsubscribe?" in r.text and ALICE.email in r.text
    assert hidden(r.text, "List-Unsubscribe") == "One-Click"
    assert live.store.subscriber_status(ALICE.email)[0] == ACTIVE  # a GET changes nothing
    # HEAD (link scanners) changes nothing either.
    assert client.head(live.links.unsubscribe).status_code == 200
    assert live.store.subscriber_status(ALICE.email)[0] == ACTIVE


def test_one_click_post_unsubscribes_without_cookies(live: Live, client: httpx.Client) -> None:
    # What a mail provider does for RFC 8058: a bare POST, no cookies, no CSRF token.
    r = client.post(live.links.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    assert "You are unsubscribed" in r.text
    assert live.store.subscriber_status(ALICE.email) == (
        UNSUBSCRIBED,
        "one-click unsubscribe link",
    )
    assert live.store.subscriber_status(BOB.email)[0] == ACTIVE


def test_one_click_post_multipart(live: Live, client: httpx.Client) -> None:
    # RFC 8058 says the POST SHOULD be multipart/form-data.
    r = client.post(live.links.unsubscribe, files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200
    assert live.store.subscriber_status(ALICE.email)[0] == UNSUBSCRIBED


def test_post_without_one_click_body_changes_nothing(live: Live, client: httpx.Client) -> None:
    r = client.post(live.links.unsubscribe, data={"something": "else"})
    assert r.status_code == 400
    assert "List-Unsubscribe=One-Click" in r.text
    assert live.store.subscriber_status(ALICE.email)[0] == ACTIVE


def test_reused_unsubscribe_token_is_idempotent(live: Live, client: httpx.Client) -> None:
    for _ in range(3):
        r = client.post(live.links.unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200
        assert "You are unsubscribed" in r.text
    assert live.store.subscriber_status(ALICE.email)[0] == UNSUBSCRIBED
    # A later GET of the same link shows the done page, not the button again.
    r = client.get(live.links.unsubscribe)
    assert r.status_code == 200 and "You are unsubscribed" in r.text


@pytest.mark.parametrize("index", [2, 30, -3])
def test_forged_token_rejected(live: Live, client: httpx.Client, index: int) -> None:
    token = live.links.unsubscribe.rsplit("/", 1)[1]
    bad = f"{live.base}/unsubscribe/{flip(token, index)}"
    r = client.post(bad, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code in (400, 403)
    assert "This link is not valid" in r.text
    assert live.store.subscriber_status(ALICE.email)[0] == ACTIVE


def test_garbage_and_foreign_tokens_rejected(live: Live, client: httpx.Client) -> None:
    r = client.get(f"{live.base}/unsubscribe/not-a-token")
    assert r.status_code == 400 and "This link is not valid" in r.text
    # Signed with another secret: a forgery.
    other = Links(live.base, "someone-elses-secret", ALICE.email).unsubscribe
    r = client.post(other, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 403
    assert live.store.subscriber_status(ALICE.email)[0] == ACTIVE


def test_a_token_has_one_spelling(live: Live, client: httpx.Client) -> None:
    """Characters outside URL-safe base64 in the signature are an error, not skipped
    (base64 decoders skip them by default: "!!" inside a valid MAC still verified)."""
    token = live.links.unsubscribe.rsplit("/", 1)[1]
    body, mac = token.split(".", 1)
    for odd in (f"{mac[:4]}!!{mac[4:]}", f"{mac}~", f"{mac}==", f"{mac[:4]}+{mac[4:]}"):
        r = client.get(f"{live.base}/unsubscribe/{body}.{odd}")
        assert r.status_code == 400 and "This link is not valid" in r.text
    assert client.get(f"{live.base}/unsubscribe/{token}").status_code == 200


def test_token_for_another_purpose_rejected(live: Live, client: httpx.Client) -> None:
    prefs_token = live.links.preferences.rsplit("/", 1)[1]
    r = client.post(
        f"{live.base}/unsubscribe/{prefs_token}", data={"List-Unsubscribe": "One-Click"}
    )
    assert r.status_code == 403
    assert live.store.subscriber_status(ALICE.email)[0] == ACTIVE


def test_token_cannot_be_moved_to_another_subscriber(live: Live, client: httpx.Client) -> None:
    # Splice Bob's payload onto Alice's signature: the MAC covers the payload.
    alice = live.links.unsubscribe.rsplit("/", 1)[1]
    bob = live.links_for(BOB.email).unsubscribe.rsplit("/", 1)[1]
    spliced = bob.split(".")[0] + "." + alice.split(".")[1]
    r = client.post(f"{live.base}/unsubscribe/{spliced}", data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 403
    assert live.store.subscriber_status(BOB.email)[0] == ACTIVE
    assert live.store.subscriber_status(ALICE.email)[0] == ACTIVE


def test_unknown_subscriber_unsubscribe_is_honoured(live: Live, client: httpx.Client) -> None:
    gone = live.links_for("gone@example.org")
    r = client.get(gone.unsubscribe)
    assert r.status_code == 200
    r = client.post(gone.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert 'id="resubscribe"' not in r.text  # nothing to resubscribe to
    assert live.store.subscriber_status("gone@example.org")[0] == UNSUBSCRIBED


def test_a_link_sent_to_the_address_in_another_case_unsubscribes_the_reader(
    live: Live, client: httpx.Client
) -> None:
    """A link made when the config spelled the address "Alice@Example.ORG" (the reader is
    now "alice@example.org"), and one for a reader no longer in the config: both record
    the unsubscribe under the lower-case key that sends look up."""
    old = live.links_for("Alice@Example.ORG")
    r = client.post(old.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert live.store.subscriber_status("alice@example.org")[0] == UNSUBSCRIBED
    gone = live.links_for("Gone@Example.org")
    assert client.post(gone.unsubscribe, data={"List-Unsubscribe": "One-Click"}).is_success
    assert live.store.subscriber_status("gone@example.org")[0] == UNSUBSCRIBED


def test_resubscribe_from_done_page(live: Live, client: httpx.Client) -> None:
    done = client.post(live.links.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert live.store.subscriber_status(ALICE.email)[0] == UNSUBSCRIBED
    action = form_action(done.text, "resubscribe")
    assert action.startswith("../resubscribe/")  # relative, built from our own token
    url = httpx.URL(live.links.unsubscribe).join(action)
    r = client.post(url, data={"csrf": hidden(done.text, "csrf")})  # cookie kept by client
    assert r.status_code == 200, r.text
    assert "Welcome back" in r.text
    assert live.store.subscriber_status(ALICE.email) == (ACTIVE, "resubscribed via link")


def test_resubscribe_without_csrf_is_refused(live: Live, client: httpx.Client) -> None:
    done = client.post(live.links.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    url = httpx.URL(live.links.unsubscribe).join(form_action(done.text, "resubscribe"))
    # No token at all.
    assert client.post(url, data={}).status_code == 403
    # The right token but no cookie (a cross-site form post).
    with httpx.Client(timeout=10) as stranger:
        r = stranger.post(url, data={"csrf": hidden(done.text, "csrf")})
    assert r.status_code == 403 and "Please try again" in r.text
    assert live.store.subscriber_status(ALICE.email)[0] == UNSUBSCRIBED


def test_resubscribe_does_not_lift_a_bounce_suppression(live: Live, client: httpx.Client) -> None:
    done = client.post(live.links.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    live.store.set_subscriber_status(ALICE.email, SUPPRESSED, "3 permanent failures")
    url = httpx.URL(live.links.unsubscribe).join(form_action(done.text, "resubscribe"))
    r = client.post(url, data={"csrf": hidden(done.text, "csrf")})
    assert r.status_code == 409 and "paused" in r.text
    assert live.store.subscriber_status(ALICE.email)[0] == SUPPRESSED


def test_unsubscribe_and_resubscribe_do_not_lift_an_earlier_bounce_pause(
    live: Live, client: httpx.Client
) -> None:
    """Paused for bounces first, then unsubscribe + resubscribe: the pause stays (only the
    sender lifts it), and the reader's unsubscribe was recorded in between."""
    for _ in range(3):
        live.store.count_permanent_failure(ALICE.email, limit=3, reason="550 no such user")
    assert live.store.subscriber_status(ALICE.email)[0] == SUPPRESSED
    done = client.post(live.links.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    status, why = live.store.subscriber_status(ALICE.email)
    assert status == UNSUBSCRIBED and why and why.startswith("one-click unsubscribe link")
    url = httpx.URL(live.links.unsubscribe).join(form_action(done.text, "resubscribe"))
    r = client.post(url, data={"csrf": hidden(done.text, "csrf")})
    assert r.status_code == 409 and "paused" in r.text
    assert live.store.subscriber_status(ALICE.email) == (
        SUPPRESSED,
        "3 permanent failures: 550 no such user",
    )


# -- preferences ---------------------------------------------------------------------------


def prefs_form(html: str) -> dict[str, str]:
    """Every named input/textarea of the preferences page with its value, as a browser would."""
    data: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        if "checkbox" not in name:
            data[name] = value
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)">(.*?)</textarea>', html, re.S):
        data[name] = value
    for key in [k for k in data if k.endswith("_remove")]:
        del data[key]  # unchecked boxes are not sent
    import html as html_mod

    return {k: html_mod.unescape(v) for k, v in data.items()}


def test_preferences_round_trip(live: Live, client: httpx.Client) -> None:
    page = client.get(live.links.preferences)
    assert page.status_code == 200
    form = prefs_form(page.text)
    assert form["schedule"] == "daily 07:00" and form["max_papers"] == "5"
    assert form["i0_name"] == "Agents" and form["i0_keywords"] == "tool use\nplanning"
    assert form["i2_name"] == ""  # one empty slot to add an interest
    form.update(
        schedule="weekdays 06:45",
        max_papers="8",
        i0_keywords="tool use, planning\nreasoning",
        i2_name="Robots <b>& arms</b>",
        i2_categories="cs.RO",
        i2_authors="Pieter Abbeel\nChelsea Finn",
    )
    r = client.post(live.links.preferences, data=form)
    assert r.status_code == 200, r.text
    assert 'id="saved"' in r.text
    assert "Robots &lt;b&gt;&amp; arms&lt;/b&gt;" in r.text  # escaped on the page
    stored = live.store.get_prefs(ALICE.email)
    assert stored is not None
    assert stored["schedule"] == "weekdays 06:45" and stored["max_papers"] == 8
    names = [i["name"] for i in stored["interests"]]
    assert names == ["Agents", "Vision", "Robots <b>& arms</b>"]
    assert stored["interests"][0]["keywords"] == ["tool use", "planning", "reasoning"]
    assert stored["interests"][2]["authors"] == ["Pieter Abbeel", "Chelsea Finn"]
    # The pipeline's view: stored prefs take precedence over the YAML.
    sub = apply_prefs(ALICE, stored)
    assert sub.schedule == "weekdays 06:45" and sub.max_papers == 8
    assert sub.interests[1].max_papers == 2 and sub.interests[1].trending  # kept from YAML
    assert sub.interests[2].categories == ("cs.RO",)
    # Reloading the page shows the stored values.
    again = prefs_form(client.get(live.links.preferences).text)
    assert again["schedule"] == "weekdays 06:45" and again["i2_authors"].startswith("Pieter")


def test_preferences_remove_interest(live: Live, client: httpx.Client) -> None:
    form = prefs_form(client.get(live.links.preferences).text)
    form["i1_remove"] = "1"
    r = client.post(live.links.preferences, data=form)
    assert r.status_code == 200
    stored = live.store.get_prefs(ALICE.email)
    assert stored is not None and [i["name"] for i in stored["interests"]] == ["Agents"]


def test_preferences_validation_errors_shown_and_nothing_stored(
    live: Live, client: httpx.Client
) -> None:
    form = prefs_form(client.get(live.links.preferences).text)
    form.update(schedule="every tuesday", max_papers="0", i0_categories="cs.AI, not a code!")
    r = client.post(live.links.preferences, data=form)
    assert r.status_code == 400
    assert 'id="errors"' in r.text
    assert "schedule: &#39;every tuesday&#39; is not a schedule" in r.text
    assert "max papers: &#39;0&#39; is not a whole number from 1 to 500" in r.text
    assert "category &#39;not a code!&#39; is not an arXiv code" in r.text
    # What the reader typed is still in the form.
    assert prefs_form(r.text)["schedule"] == "every tuesday"
    assert live.store.get_prefs(ALICE.email) is None


def test_a_reader_configured_beyond_the_forms_limits_can_still_save(
    tmp_path: Path, client: httpx.Client
) -> None:
    """The config allows more than the form's defaults (20 interests, 50 items, 80-character
    names, arXiv codes only): such a reader's form failed on every save, even a schedule
    change, and nothing could be saved. What the config gives is accepted as it is."""
    from newsletter.prefs import MAX_INTERESTS, MAX_ITEMS, MAX_NAME

    many = tuple(
        Interest(name=f"Topic {k}", keywords=(f"word{k}",)) for k in range(MAX_INTERESTS + 5)
    )
    wide = Interest(
        name="N" * (MAX_NAME + 20),
        keywords=tuple(f"kw{k}" for k in range(MAX_ITEMS + 10)),
        categories=("econ.GN", "blog"),  # "blog": a tag of a feed source, not an arXiv code
    )
    carol = Subscriber(email="carol@example.org", interests=(*many, wide))
    sock, base = bound_socket()
    config = replace(make_config(tmp_path, base), subscribers=(ALICE, carol))
    links = Links(base, SECRET, carol.email)
    with Store(config.state) as store, running(create_app(config, store), sock):
        form = prefs_form(client.get(links.preferences).text)
        assert int(form["count"]) == len(carol.interests)  # every one (at the limit: no new)
        form.update(schedule="weekdays 06:45", i0_keywords="word0\nextra")
        r = client.post(links.preferences, data=form)
        assert r.status_code == 200, re.findall(r"<li>(.*?)</li>", r.text)
        stored = store.get_prefs(carol.email)
        # A reader with the defaults still gets the defaults' limits (two and a new slot).
        alice = prefs_form(client.get(Links(base, SECRET, ALICE.email).preferences).text)
        assert int(alice["count"]) == 3
    assert stored is not None
    sub = apply_prefs(carol, stored)  # what the pipeline sends by
    assert sub.schedule == "weekdays 06:45"
    assert [i.name for i in sub.interests] == [i.name for i in carol.interests]
    assert sub.interests[0].keywords == ("word0", "extra")  # the saved interests apply
    assert sub.interests[-1].categories == ("econ.GN", "blog")


@pytest.mark.parametrize("typed", ["\u00b2", "--5", "9" * 5000])
def test_preferences_max_papers_that_look_like_digits(
    live: Live, client: httpx.Client, typed: str
) -> None:
    """str.isdigit accepts them, int() does not: a problem shown, not a 500."""
    form = prefs_form(client.get(live.links.preferences).text)
    form["max_papers"] = typed
    r = client.post(live.links.preferences, data=form)
    assert r.status_code == 400, r.text
    assert "is not a whole number from 1 to 500" in r.text
    assert live.store.get_prefs(ALICE.email) is None


def test_preferences_need_one_interest(live: Live, client: httpx.Client) -> None:
    form = prefs_form(client.get(live.links.preferences).text)
    form.update(i0_remove="1", i1_remove="1")
    r = client.post(live.links.preferences, data=form)
    assert r.status_code == 400 and "add at least one interest" in r.text
    assert live.store.get_prefs(ALICE.email) is None


def test_preferences_csrf_missing_or_wrong(live: Live, client: httpx.Client) -> None:
    form = prefs_form(client.get(live.links.preferences).text)
    form["schedule"] = "weekly fri 09:00"
    no_token = {k: v for k, v in form.items() if k != "csrf"}
    r = client.post(live.links.preferences, data=no_token)
    assert r.status_code == 403 and "Please try again" in r.text
    # A token made for Bob's form does not work on Alice's.
    bob_page = client.get(live.links_for(BOB.email).preferences)
    r = client.post(live.links.preferences, data={**form, "csrf": hidden(bob_page.text, "csrf")})
    assert r.status_code == 403
    # A cross-site request (as a browser labels it) is refused even with the token.
    r = client.post(live.links.preferences, data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # A client without the cookie is refused.
    with httpx.Client(timeout=10) as stranger:
        assert stranger.post(live.links.preferences, data=form).status_code == 403
    assert live.store.get_prefs(ALICE.email) is None
    # And the honest submission works.
    assert client.post(live.links.preferences, data=form).status_code == 200
    assert live.store.get_prefs(ALICE.email)["schedule"] == "weekly fri 09:00"  # type: ignore[index]


def test_preferences_unknown_subscriber(live: Live, client: httpx.Client) -> None:
    r = client.get(live.links_for("gone@example.org").preferences)
    assert r.status_code == 404
    assert "no longer on this newsletter" in r.text


def test_preferences_forged(live: Live, client: httpx.Client) -> None:
    token = live.links.preferences.rsplit("/", 1)[1]
    r = client.get(f"{live.base}/preferences/{flip(token)}")
    assert r.status_code in (400, 403)


# -- feedback ------------------------------------------------------------------------------


def test_feedback_get_only_asks(live: Live, client: httpx.Client) -> None:
    # A mail link scanner opens every link: "more" and "less" both. Nothing is recorded.
    live.store.upsert_papers([Paper(id="2411.00001", title="Tool <use> in agents")])
    for vote in (1, -1, 0):
        r = client.get(live.links.feedback("2411.00001", vote))
        assert r.status_code == 200
        assert "Tool &lt;use&gt; in agents" in r.text
        assert hidden(r.text, "csrf")
        assert form_action(r.text, "confirm") == ""  # posts back to the same signed URL
    assert "Mark as more like this?" in client.get(live.links.feedback("2411.00001", 1)).text
    assert live.store.feedback(ALICE.email) == {}
    # HEAD (link checkers) records nothing either.
    assert client.head(live.links.feedback("2411.00001", -1)).status_code == 200
    assert live.store.feedback(ALICE.email) == {}


def test_feedback_button_records_idempotent_and_undoable(live: Live, client: httpx.Client) -> None:
    live.store.upsert_papers([Paper(id="2411.00001", title="Tool <use> in agents")])
    more = live.links.feedback("2411.00001", 1)
    page = client.get(more)
    for _ in range(2):  # the button pressed twice (a reload, a double click): one vote
        r = client.post(more, data={"csrf": hidden(page.text, "csrf")})
        assert r.status_code == 200
        assert "Thank you" in r.text and "more like this" in r.text
        assert "Tool &lt;use&gt; in agents" in r.text
    assert live.store.feedback(ALICE.email) == {"2411.00001": 1}
    # The confirmation page now says what is recorded.
    assert "so far: <strong>more like this</strong>" in client.get(more).text
    # The thank-you page offers the other choices as signed, CSRF-protected buttons.
    action = form_action(r.text, "vote-less")
    assert action.startswith("../feedback/")
    r = client.post(httpx.URL(more).join(action), data={"csrf": hidden(r.text, "csrf")})
    assert r.status_code == 200
    assert live.store.feedback(ALICE.email) == {"2411.00001": -1}


def test_feedback_post_without_csrf_records_nothing(live: Live, client: httpx.Client) -> None:
    live.store.upsert_papers([Paper(id="2411.00005", title="A paper")])
    more = live.links.feedback("2411.00005", 1)
    page = client.get(more)
    token = hidden(page.text, "csrf")
    assert client.post(more).status_code == 403  # no form token
    with httpx.Client(timeout=10) as stranger:  # the token without the cookie
        assert stranger.post(more, data={"csrf": token}).status_code == 403
    # A cross-site form (another page submitting into ours) is refused too.
    r = client.post(more, data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # Bob's form token does not vote for Alice.
    bob_page = client.get(live.links_for(BOB.email).feedback("2411.00005", 1))
    assert client.post(more, data={"csrf": hidden(bob_page.text, "csrf")}).status_code == 403
    assert live.store.feedback(ALICE.email) == {}
    assert live.store.feedback(BOB.email) == {}


def test_feedback_forged_and_bad_vote(live: Live, client: httpx.Client) -> None:
    token = live.links.feedback("2411.00003", 1).rsplit("/", 1)[1]
    assert client.get(f"{live.base}/feedback/{flip(token)}").status_code in (400, 403)
    bad_vote = sign(SECRET, "feedback", {"s": ALICE.email, "p": "2411.00003", "v": 7})
    assert client.get(f"{live.base}/feedback/{bad_vote}").status_code == 400
    assert live.store.feedback(ALICE.email) == {}


def test_feedback_links_of_older_emails_still_work(live: Live, client: httpx.Client) -> None:
    """Emails sent before carried one signed token per link; those links keep working."""
    live.store.upsert_papers([Paper(id="2411.00006", title="An older paper")])
    old = f"{live.base}/feedback/" + sign(
        SECRET, "feedback", {"s": ALICE.email, "p": "2411.00006", "v": -1}
    )
    page = client.get(old)
    assert page.status_code == 200 and "An older paper" in page.text
    assert client.post(old, data={"csrf": hidden(page.text, "csrf")}).status_code == 200
    assert live.store.feedback(ALICE.email) == {"2411.00006": -1}


def test_feedback_link_with_a_changed_vote_or_reader(live: Live, client: httpx.Client) -> None:
    link = live.links.feedback("2411.00007", 1)
    prefix, token = link.rsplit("/", 1)
    body, mac, _, paper = token.split(".")
    for vote in ("7", "+1", "01"):  # no such vote (the forms are strict)
        assert client.get(f"{prefix}/{body}.{mac}.{vote}.{paper}").status_code == 400
    bob = live.links_for(BOB.email).feedback("2411.00007", 1).rsplit("/", 1)[1]
    bob_body = bob.split(".")[0]
    assert client.get(f"{prefix}/{bob_body}.{mac}.1.{paper}").status_code == 403
    preferences = live.links.preferences.rsplit("/", 1)[1]  # signed for another purpose
    assert client.get(f"{prefix}/{preferences}.1.{paper}").status_code == 403
    assert live.store.feedback(ALICE.email) == {}
    assert live.store.feedback(BOB.email) == {}


def test_feedback_for_a_paper_not_in_the_store_records_nothing(
    live: Live, client: httpx.Client
) -> None:
    """The paper id of a link is not signed, so a vote counts only for a known paper."""
    made_up = live.links.feedback("not-a-paper-we-sent", 1)
    page = client.get(made_up)  # no button to confirm a vote that cannot be recorded
    assert page.status_code == 404 and "Paper not found" in page.text
    assert "csrf" not in page.text
    live.store.upsert_papers([Paper(id="2411.00004", title="A paper we sent")])
    known = client.get(live.links.feedback("2411.00004", 1))  # a valid form of this reader
    assert known.status_code == 200
    r = client.post(made_up, data={"csrf": hidden(known.text, "csrf")})
    assert r.status_code == 404 and "nothing was recorded" in r.text
    assert live.store.feedback(ALICE.email) == {}


def test_feedback_unknown_subscriber(live: Live, client: httpx.Client) -> None:
    link = live.links_for("gone@example.org").feedback("2411.00004", -1)
    assert client.get(link).status_code == 404
    assert client.post(link, data={"csrf": "x"}).status_code == 404
    assert live.store.feedback("gone@example.org") == {}


# -- headers, errors, secret ---------------------------------------------------------------


def test_security_headers_on_every_page(live: Live, client: httpx.Client) -> None:
    for r in (
        client.get(live.links.unsubscribe),
        client.get(live.links.preferences),
        client.get(f"{live.base}/unsubscribe/forged.token"),
        client.get(f"{live.base}/no/such/page"),
        client.get(live.base + "/"),
    ):
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp  # no scripts at all
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-type"].startswith("text/html")
        assert "location" not in r.headers  # nothing redirects


def test_style_hash_matches_page(live: Live, client: httpx.Client) -> None:
    import base64
    import hashlib

    r = client.get(live.links.unsubscribe)
    style = re.search(r"<style>(.*?)</style>", r.text, re.S)
    assert style
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in r.headers["content-security-policy"]


def test_csrf_cookie_flags(live: Live, client: httpx.Client) -> None:
    r = client.get(live.links.preferences)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_not_found_and_wrong_method(live: Live, client: httpx.Client) -> None:
    r = client.get(f"{live.base}/admin")
    assert r.status_code == 404 and "Page not found" in r.text
    r = client.delete(live.links.unsubscribe)
    assert r.status_code == 405
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert allowed == {"GET", "HEAD", "POST"}  # RFC 9110: a 405 names what is allowed
    assert r.headers["x-frame-options"] == "DENY"
    r = client.request("PUT", f"{live.base}/resubscribe/x")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_a_trailing_slash_is_not_redirected_to_the_host_header(
    live: Live, client: httpx.Client
) -> None:
    """Starlette's default: 307 to ``http://<Host header>/unsubscribe/<token>``, the token
    sent to whatever host the request named. Nothing here redirects: 404."""
    evil = {"host": "evil.example"}
    for r in (
        client.get(live.links.unsubscribe + "/", headers=evil),
        client.post(
            live.links.unsubscribe + "/", headers=evil, data={"List-Unsubscribe": "One-Click"}
        ),
        client.get(live.links.preferences + "/", headers=evil),
    ):
        assert r.status_code == 404 and "Page not found" in r.text
        assert "location" not in r.headers
    assert live.store.subscriber_status(ALICE.email)[0] == ACTIVE


def test_oversized_body_refused(live: Live, client: httpx.Client) -> None:
    r = client.post(live.links.preferences, data={"x": "a" * 200_000})
    assert r.status_code == 413


def test_body_limits_answer_their_status_and_log_no_error(
    live: Live, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Starlette's refusals while reading a form are the client's fault: 413/400 with the
    app's page, not a 500 with a traceback (holding the link's token) in the error log."""
    client.get(live.links.preferences)  # the CSRF cookie, as a reader has it
    form_type = {"content-type": "application/x-www-form-urlencoded"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(100):
            yield b"a" * 1024

    with caplog.at_level(logging.ERROR):
        r = client.post(live.links.preferences, content=chunks(), headers=form_type)
        assert r.status_code == 413 and "Too large" in r.text
        many = "&".join(f"f{i}=1" for i in range(1000))  # 1000 fields in 9 KB
        r = client.post(live.links.preferences, content=many, headers=form_type)
        assert r.status_code == 400 and "could not be read" in r.text
        r = client.post(live.links.preferences, files={"upload": ("a.txt", b"hi")})
        assert r.status_code == 400
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert [rec for rec in caplog.records if rec.levelno >= logging.ERROR] == []
    assert live.store.get_prefs(ALICE.email) is None


def test_an_unexpected_error_is_logged_without_the_token(
    live: Live,
    client: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(email: str) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(live.store, "get_prefs", broken)
    with caplog.at_level(logging.ERROR):
        r = client.get(live.links.preferences)
    assert r.status_code == 500 and "Something went wrong" in r.text
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "web: GET /preferences/[token] failed" in logged
    token = live.links.preferences.rsplit("/", 1)[1]
    assert token.split(".")[0] not in logged and token.split(".")[1] not in logged


def test_secret_from_env_else_state(tmp_path: Path, store: Store) -> None:
    assert secret_for(make_config(tmp_path, "http://x", "from-env"), store) == "from-env"
    kept = secret_for(make_config(tmp_path, "http://x", None), store)
    assert kept and kept == store.secret_key()  # stable across calls


# -- prefs (pure) --------------------------------------------------------------------------


def test_apply_prefs_tolerates_stale_or_bad_data() -> None:
    assert apply_prefs(ALICE, None) is ALICE
    got = apply_prefs(ALICE, {"schedule": "nonsense", "max_papers": 3, "interests": "x"})
    assert got.schedule == ALICE.schedule and got.max_papers == 3
    assert got.interests == ALICE.interests


def test_validate_prefs_messages() -> None:
    _, problems = validate_prefs(
        {
            "interests": [
                {"name": "A", "keywords": ["x"]},
                {"name": "a", "keywords": ["y"]},
                {"name": "Empty"},
            ]
        }
    )
    assert problems == [
        "interest 2 'a': the name is used twice (names must be unique)",
        "interest 3 'Empty': matches nothing (add keywords, categories, authors or a description)",
    ]


def test_trending_interest_may_match_nothing() -> None:
    item = {"interests": [{"name": "Hot today"}]}
    assert validate_prefs(item)[1]  # an ordinary interest must match something
    assert validate_prefs(item, trending={"Hot today"})[1] == []
