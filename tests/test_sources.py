"""Feed ingestion against the real feeds in ../shared/data/feeds, over a real local HTTP server.

The server (ThreadingHTTPServer on 127.0.0.1, port 0) serves the real files with
ETag / Last-Modified and 304s, plus a 500-then-200 sequence, a 410, a handler slower
than the client timeout, an HTML error page, an empty body, a redirect and a 404.
"""

from __future__ import annotations

import hashlib
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsletter import __version__
from newsletter.config import Config, SourceConfig
from newsletter.models import Paper
from newsletter.sources import enable_source, fetch_all, fetch_source, fetch_status, parse_bytes

BIG_DAY = "arxiv_rss_all-archives_2024-11-28.xml"
HF_API = "hf_daily_papers_api_2026-06-13.json"
FAST = 0.001  # retry backoff in tests (seconds)

# Anything that could run as script or an event handler, were it ever rendered raw.
DANGER = re.compile(r"<\s*/?\s*script|<[^>]*\son[a-z]+\s*=|javascript\s*:", re.IGNORECASE)

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1><p>Try again later.</p></body></html>"
)


@dataclass
class Server:
    base: str
    feeds: Path
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    flaky_failures: int = 2
    flaky_count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def _serve_file(self, name: str, *, etag: bool, last_modified: bool) -> None:
            path = server.feeds / name
            if not path.is_file():
                self._send(404, b"not found")
                return
            body = path.read_bytes()
            tag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            mtime = int(path.stat().st_mtime)
            headers = {"Content-Type": "application/xml"}
            if etag:
                headers["ETag"] = tag
            if last_modified:
                headers["Last-Modified"] = formatdate(mtime, usegmt=True)
            if etag and self.headers.get("If-None-Match") == tag:
                self._send(304, headers=headers)
                return
            since = self.headers.get("If-Modified-Since")
            if last_modified and since and parsedate_to_datetime(since).timestamp() >= mtime:
                self._send(304, headers=headers)
                return
            self._send(200, body, headers)

        def do_GET(self) -> None:
            server.requests.append((self.path, dict(self.headers)))
            path = self.path
            if path.startswith("/feeds/"):
                self._serve_file(path[len("/feeds/") :], etag=True, last_modified=True)
            elif path.startswith("/etag-only/"):
                self._serve_file(path[len("/etag-only/") :], etag=True, last_modified=False)
            elif path.startswith("/lm-only/"):
                self._serve_file(path[len("/lm-only/") :], etag=False, last_modified=True)
            elif path == "/flaky":
                with server.lock:
                    server.flaky_count += 1
                    fail = server.flaky_count <= server.flaky_failures
                if fail:
                    self._send(500, b"Internal Server Error")
                else:
                    self._serve_file(
                        "arxiv_rss_quant-ph_2025-04-28.xml", etag=True, last_modified=False
                    )
            elif path == "/always-500":
                self._send(503, b"down")
            elif path == "/gone":
                self._send(410, b"Gone")
            elif path == "/slow":
                time.sleep(1.5)
                self._send(
                    200, (server.feeds / "biorxiv_rss1_genomics_2023-12-16.xml").read_bytes()
                )
            elif path == "/html":
                self._send(200, HTML_PAGE, {"Content-Type": "text/html"})
            elif path == "/empty":
                self._send(200, b"", {"Content-Type": "application/rss+xml"})
            elif path == "/moved":
                self._send(301, headers={"Location": "/feeds/arxiv_rss_quant-ph_2025-04-28.xml"})
            elif path == "/cut":  # promises 100 KB, sends 100 bytes, hangs up
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"<rss>" + b" " * 95)
                self.wfile.flush()
                self.close_connection = True
            else:
                self._send(404, b"no such feed")

    return Handler


@pytest.fixture(scope="module")
def feeds(shared_data: Path) -> Path:
    return shared_data / "feeds"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up (the timeout test) breaks the pipe: expected, not printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture()
def server(feeds: Path) -> Iterator[Server]:
    state = Server(base="", feeds=feeds)
    httpd = _QuietServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def src(name: str, type_: str, url: str, **kw: object) -> SourceConfig:
    return SourceConfig(name=name, type=type_, url=url, **kw)  # type: ignore[arg-type]


def stored_text(papers: list[Paper]) -> Iterator[str]:
    for paper in papers:
        yield paper.title
        yield paper.abstract
        yield from paper.authors


# -- the "Must hold" list ----------------------------------------------------------------


def test_big_day_over_http_935_new_then_a_304(store, server: Server) -> None:
    source = src("arxiv-all", "arxiv", f"{server.base}/feeds/{BIG_DAY}")
    first = fetch_source(source, store, backoff=FAST)
    assert first.errors == ()
    assert (first.fetched, first.new, first.duplicate, first.skipped) == (1504, 935, 0, 569)
    assert store.count_papers() == 935
    state = store.fetch_state("arxiv-all")
    assert state.last_status == "ok" and state.etag and state.last_modified
    assert state.last_new == 935

    second = fetch_source(source, store, backoff=FAST)
    assert second.not_modified is True
    assert (second.fetched, second.new, second.duplicate) == (0, 0, 0)
    assert second.ok
    hits = server.hits(f"/feeds/{BIG_DAY}")
    assert len(hits) == 2
    assert hits[1]["If-None-Match"] == state.etag
    assert store.fetch_state("arxiv-all").last_status == "not_modified"
    assert store.count_papers() == 935


@pytest.mark.parametrize("route", ["etag-only", "lm-only"])
def test_second_fetch_is_a_304_with_etag_or_last_modified_alone(store, server, route) -> None:
    source = src("q", "arxiv", f"{server.base}/{route}/arxiv_rss_quant-ph_2025-04-28.xml")
    assert fetch_source(source, store).new == 50
    again = fetch_source(source, store)
    assert again.not_modified and again.new == 0
    headers = server.hits(f"/{route}/arxiv_rss_quant-ph_2025-04-28.xml")[1]
    wanted = "If-None-Match" if route == "etag-only" else "If-Modified-Since"
    assert wanted in headers


def test_big_day_from_a_file_twice_0_new_the_second_time(store, feeds: Path) -> None:
    source = src("arxiv-file", "arxiv", str(feeds / BIG_DAY))
    assert fetch_source(source, store).new == 935
    again = fetch_source(source, store)
    assert (again.fetched, again.new, again.duplicate, again.skipped) == (1504, 0, 935, 569)


def test_file_url_works(store, feeds: Path) -> None:
    report = fetch_source(
        src("f", "feed", (feeds / "nature_rss1_current_2024-07-18.xml").as_uri()), store
    )
    assert report.ok and report.new == 75


def test_hf_daily_api_30_papers_with_upvotes(store, feeds: Path) -> None:
    report = fetch_source(src("hf", "hf_daily", str(feeds / HF_API)), store)
    assert report.ok and report.new == 30
    papers = store.papers()
    assert len(papers) == 30
    assert all(p.upvotes is not None for p in papers)
    assert max(p.upvotes or 0 for p in papers) == 118
    top = max(papers, key=lambda p: p.upvotes or 0)
    assert top.signals["ai_summary"] and top.signals["ai_keywords"]
    assert isinstance(top.signals["comments"], int)
    assert top.hf_url == f"https://huggingface.co/papers/{top.id}"
    assert re.fullmatch(r"\d{4}\.\d{4,5}", top.id)
    assert top.authors and top.abstract


def _type_for(path: Path) -> str:
    name = path.name
    if name.startswith("hf_daily"):
        return "hf_daily"
    if name.endswith(".json"):
        return "jsonfeed"
    if name.startswith("arxiv_api"):
        return "arxiv_api"
    if name.startswith("arxiv_rss"):
        return "arxiv"
    return "feed"


def _all_feed_files() -> list[Path]:
    from conftest import SHARED_DATA

    folder = SHARED_DATA / "feeds"
    if not folder.is_dir():
        return []
    return sorted(p for p in [*folder.glob("*"), *folder.glob("feedparser_tests/*")] if p.is_file())


@pytest.mark.parametrize("path", _all_feed_files(), ids=lambda p: p.name)
def test_every_real_file_is_ingested_or_a_named_error(store, shared_data, path: Path) -> None:
    source = src("s", _type_for(path), str(path), announce_types=("new", "cross", "replace"))
    report = fetch_source(source, store)  # must not raise
    papers = store.papers()
    if report.errors:
        assert report.new == 0 and not papers
        for error in report.errors:
            assert error.startswith("source 's': ") and len(error) > len("source 's': ") + 10
            assert "\n" not in error
    else:
        assert report.new + report.duplicate + report.skipped <= report.fetched
        assert report.new == len(papers)
    for text in stored_text(papers):
        assert not DANGER.search(text), text
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), text
    for paper in papers:
        assert "\n" not in paper.title and "\r" not in paper.title
        assert paper.id and paper.title
        assert not paper.abstract.startswith("arXiv:")


def test_expected_outcomes_of_notable_files(store, feeds: Path) -> None:
    def run(name: str, type_: str):
        return parse_bytes(src("s", type_, name), (feeds / name).read_bytes())

    assert len(run("arxiv_api_atom_search-testing_100entries.xml", "arxiv_api").papers) == 100
    assert len(run("hf_papers_community_rss_2026-08-21.xml", "feed").papers) == 26
    assert len(run("hf_papers_community_jsonfeed_2026-08-21.json", "jsonfeed").papers) == 26
    assert len(run("nature_rss1_current_2024-07-18.xml", "feed").papers) == 75
    ajph = run("journal_rss1_atypon_ajph_2015-03.xml", "feed")
    assert len(ajph.papers) == 20 and any("malformed" in w for w in ajph.warnings)
    empty = run("odd_community_rss_cn-chat-arxiv_cs.CL_empty_2026-08-22.xml", "feed")
    assert empty.ok and empty.papers == [] and empty.warnings
    broken = run("feedparser_tests/illformed__aaa_illformed.xml", "feed")
    assert broken.errors and "malformed feed" in broken.errors[0]


def test_feedparser_script_cases_leave_no_script(feeds: Path) -> None:
    for name in (
        "wellformed__sanitize__entry_summary_script.xml",
        "wellformed__sanitize__entry_title_crazy.xml",
        "wellformed__sanitize__item_description_script_map_summary.xml",
    ):
        result = parse_bytes(
            src("s", "feed", name), (feeds / "feedparser_tests" / name).read_bytes()
        )
        assert result.papers, name
        for text in stored_text(result.papers):
            assert not DANGER.search(text)
            assert "alert(" not in text


@pytest.mark.parametrize(
    ("name", "type_", "fragment"),
    [
        (HF_API, "feed", "JSON"),
        (HF_API, "jsonfeed", "not a JSON Feed"),
        ("hf_papers_community_jsonfeed_2026-08-21.json", "hf_daily", "expected a JSON list"),
        (BIG_DAY, "hf_daily", "not JSON"),
        ("nature_rss1_current_2024-07-18.xml", "jsonfeed", "not JSON"),
        ("nature_rss1_current_2024-07-18.xml", "arxiv", "not an arXiv feed"),
        ("arxiv_rss_quant-ph_2025-04-28.xml", "arxiv_api", "not an arXiv API response"),
        (HF_API, "arxiv", "JSON"),
    ],
)
def test_a_file_given_the_wrong_type_is_a_named_error(store, feeds, name, type_, fragment) -> None:
    report = fetch_source(src("wrong", type_, str(feeds / name)), store)
    assert len(report.errors) == 1
    assert report.errors[0].startswith("source 'wrong': ")
    assert fragment in report.errors[0]
    assert report.new == 0 and store.count_papers() == 0
    assert store.fetch_state("wrong").last_status == "error"


def test_arxiv_api_error_entry_is_a_source_error_not_a_paper(store, feeds: Path) -> None:
    report = fetch_source(
        src("api", "arxiv_api", str(feeds / "arxiv_api_atom_error400_bad-id.xml")), store
    )
    assert report.errors == (
        "source 'api': the arXiv API reported an error: incorrect id format for abc "
        "(check the query URL)",
    )
    assert store.count_papers() == 0


def test_arxiv_api_empty_result_is_fine(store, feeds: Path) -> None:
    report = fetch_source(
        src("api", "arxiv_api", str(feeds / "arxiv_api_atom_empty_no-results.xml")), store
    )
    assert report.ok and report.fetched == 0 and report.new == 0
    assert report.warnings == ("source 'api': the arXiv API query returned no results",)


# -- HTTP behaviour --------------------------------------------------------------------------


def test_500_then_200_is_retried(store, server: Server) -> None:
    report = fetch_source(
        src("flaky", "arxiv", f"{server.base}/flaky", retries=2), store, backoff=FAST
    )
    assert report.ok and report.new == 50
    assert len(server.hits("/flaky")) == 3


def test_retries_are_bounded(store, server: Server) -> None:
    report = fetch_source(
        src("down", "feed", f"{server.base}/always-500", retries=1), store, backoff=FAST
    )
    assert len(server.hits("/always-500")) == 2
    assert report.errors == (
        f"source 'down': HTTP 503 Service Unavailable from {server.base}/always-500 (2 attempts)",
    )
    state = store.fetch_state("down")
    assert state.last_status == "error" and "HTTP 503" in (state.last_error or "")


def test_410_disables_the_source_with_a_warning(store, server: Server) -> None:
    source = src("old", "feed", f"{server.base}/gone")
    report = fetch_source(source, store)
    # Not an error, but not fetched either: neither ok nor "ok" in `newsletter fetch`.
    assert report.disabled and not report.ok and not report.errors
    assert report.warnings and "410 Gone" in report.warnings[0]
    assert "disabled" in report.warnings[0]
    assert fetch_status(report) == "disabled (410 Gone; see the warning)"
    state = store.fetch_state("old")
    assert state.disabled and "410" in (state.disabled_reason or "")

    again = fetch_source(source, store)
    assert len(server.hits("/gone")) == 1  # not asked again
    assert again.warnings and "is disabled" in again.warnings[0]
    assert again.disabled and not again.ok

    enable_source(store, "old")
    assert not store.fetch_state("old").disabled
    fetch_source(source, store)
    assert len(server.hits("/gone")) == 2


def test_a_server_slower_than_the_timeout_is_an_error(store, server: Server) -> None:
    source = src("slow", "feed", f"{server.base}/slow", timeout=0.3, retries=1)
    started = time.monotonic()
    report = fetch_source(source, store, backoff=FAST)
    elapsed = time.monotonic() - started
    assert len(report.errors) == 1
    assert "timed out after 0.3 s" in report.errors[0] and "(2 attempts)" in report.errors[0]
    assert elapsed < 1.4  # two attempts of 0.3 s, not the server's 1.5 s


def test_an_html_error_page_is_not_a_feed(store, server: Server) -> None:
    report = fetch_source(src("html", "feed", f"{server.base}/html"), store)
    assert report.errors == (
        "source 'html': not a feed: the server sent an HTML page (an error or login page?)",
    )


def test_an_empty_body_is_not_a_feed(store, server: Server) -> None:
    for type_ in ("feed", "arxiv", "hf_daily", "jsonfeed"):
        report = fetch_source(src(f"e-{type_}", type_, f"{server.base}/empty"), store)
        assert len(report.errors) == 1 and "empty response body" in report.errors[0], type_


def test_404_and_a_closed_port_are_named_errors(store, server: Server) -> None:
    report = fetch_source(src("nf", "feed", f"{server.base}/nope"), store)
    assert report.errors == (
        f"source 'nf': HTTP 404 Not Found from {server.base}/nope (check the source's url)",
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = fetch_source(src("cl", "feed", f"http://127.0.0.1:{port}/x", retries=0), store)
    assert len(closed.errors) == 1 and "cannot connect to" in closed.errors[0]
    # Connected, then cut off mid-body: said as such, not "cannot connect".
    cut = fetch_source(src("cut", "feed", f"{server.base}/cut", retries=0), store)
    assert len(cut.errors) == 1, cut.errors
    assert f"the connection to {server.base}/cut broke off: " in cut.errors[0]


def test_redirects_are_followed_and_the_user_agent_names_the_project(store, server) -> None:
    report = fetch_source(src("mv", "arxiv", f"{server.base}/moved"), store)
    assert report.ok and report.new == 50
    agent = server.hits("/moved")[0]["User-Agent"]
    assert agent.startswith(f"newsletter/{__version__} (+https://")


def test_a_missing_file_is_a_named_error(store, tmp_path: Path) -> None:
    missing = tmp_path / "nope.xml"
    report = fetch_source(src("mf", "feed", str(missing)), store)
    assert report.errors == (f"source 'mf': file not found: {missing} (check the source's url)",)


def test_fetch_all_one_failure_never_stops_the_others(store, server, feeds, tmp_path) -> None:
    (tmp_path / "local.xml").write_bytes(
        (feeds / "biorxiv_rss1_genomics_2023-12-16.xml").read_bytes()
    )
    config = Config(
        path=tmp_path / "subscribers.yaml",
        state=str(tmp_path / "state.db"),
        subscribers=(),
        sources=(
            src("broken", "feed", f"{server.base}/html"),
            src("quant", "arxiv", f"{server.base}/feeds/arxiv_rss_quant-ph_2025-04-28.xml"),
            src("relative", "feed", "local.xml"),  # resolved against the config's folder
            src("off", "feed", f"{server.base}/never", enabled=False),
            src("hf", "hf_daily", str(feeds / HF_API)),
        ),
    )
    reports = fetch_all(config, store, backoff=FAST)
    assert [r.name for r in reports] == ["broken", "quant", "relative", "hf"]
    assert [r.ok for r in reports] == [False, True, True, True]
    assert [r.new for r in reports] == [0, 50, 1, 30]
    assert not server.hits("/never")


# -- normalisation, dedupe, versions ---------------------------------------------------------


def test_arxiv_rss_normalisation(feeds: Path) -> None:
    result = parse_bytes(src("a", "arxiv", BIG_DAY), (feeds / BIG_DAY).read_bytes())
    by_id = {p.id: p for p in result.papers}
    first = by_id["2411.17700"]
    assert first.version == 1 and first.announce_type == "new"
    assert first.url == "https://arxiv.org/abs/2411.17700"
    assert first.pdf_url == "https://arxiv.org/pdf/2411.17700"
    assert first.abstract.startswith("This study investigates")
    assert first.categories == ("cs.CY",)
    assert first.published is not None and first.published.utcoffset().total_seconds() == 0
    several = [
        p for p in result.papers if p.authors[:3] == ("Hyewon Jeong", "Suyeol Yun", "Hammaad Adam")
    ]
    assert several and len(several[0].authors) == 3
    assert {p.announce_type for p in result.papers} == {"new", "cross"}
    # LaTeX stays readable: the "<" of an inequality is not taken for a tag.
    assert any(r"\frac{1}{3}<s<1$" in p.abstract for p in result.papers)
    assert all(not p.abstract.startswith("arXiv:") for p in result.papers)


def test_replacements_are_kept_when_asked(feeds: Path) -> None:
    body = (feeds / BIG_DAY).read_bytes()
    result = parse_bytes(
        src("a", "arxiv", BIG_DAY, announce_types=("new", "cross", "replace")), body
    )
    assert result.skipped == 0 and len(result.papers) == 1504
    assert sum(p.announce_type == "replace" for p in result.papers) == 569


def test_old_rdf_arxiv_format(feeds: Path) -> None:
    name = "arxiv_rss_old-rdf_hep-ex_2018-05-23_trimmed-3items.xml"
    body = (feeds / name).read_bytes()
    result = parse_bytes(src("old", "arxiv", name), body)
    assert [(p.id, p.announce_type) for p in result.papers] == [
        ("1805.08875", "new"),
        ("1805.09166", "cross"),
    ]
    assert result.skipped == 1  # 1805.06430v2 UPDATED is a replacement
    first = result.papers[0]
    assert first.title == "Measurement of Transverse Single Spin Asymmetries"
    assert first.authors == ("Christopher Dilks (STAR Collaboration)",)
    assert first.categories[0] == "hep-ex" and first.version == 1
    assert r"$2.6<\eta<4$" in first.abstract and "<p>" not in first.abstract
    kept = parse_bytes(src("old", "arxiv", name, announce_types=("new", "cross", "replace")), body)
    updated = kept.papers[-1]
    assert (updated.id, updated.version, updated.announce_type) == ("1805.06430", 2, "replace")
    assert updated.categories[0] == "nucl-th"


def test_a_new_version_is_a_duplicate_not_a_new_paper(store) -> None:
    v1 = Paper(id="2411.17700", title="T", version=1, source="a")
    assert store.upsert_papers([v1]) == (1, 0)
    v2 = Paper(id="2411.17700", title="T", version=2, source="b", signals={"upvotes": 3})
    assert store.upsert_papers([v2]) == (0, 1)
    stored = store.get_paper("2411.17700")
    assert stored is not None and stored.version == 2 and stored.upvotes == 3


def test_one_paper_from_two_sources_is_stored_once(store, feeds: Path) -> None:
    rss = fetch_source(
        src("hf-rss", "feed", str(feeds / "hf_papers_community_rss_2026-08-21.xml")), store
    )
    json_feed = fetch_source(
        src("hf-json", "jsonfeed", str(feeds / "hf_papers_community_jsonfeed_2026-08-21.json")),
        store,
    )
    assert rss.new == 26
    assert (json_feed.new, json_feed.duplicate) == (0, 26)
    assert store.count_papers() == 26
    paper = store.papers()[0]
    assert paper.hf_url and paper.hf_url.startswith("https://huggingface.co/papers/")
    assert paper.url.startswith("https://arxiv.org/abs/")


def test_doi_and_link_ids(feeds: Path) -> None:
    bio = parse_bytes(
        src("b", "feed", "x"), (feeds / "biorxiv_rss1_genomics_2023-12-16.xml").read_bytes()
    )
    paper = bio.papers[0]
    assert paper.id == "doi:10.1101/2023.12.16.571984"
    assert paper.authors[:2] == ("N. LAPALU", "A. SIMON") and len(paper.authors) == 10
    assert paper.title.startswith("Complete genome") and paper.title == paper.title.strip()
    nature = parse_bytes(
        src("n", "feed", "x"), (feeds / "nature_rss1_current_2024-07-18.xml").read_bytes()
    )
    assert all(p.id.startswith("doi:10.1038/") for p in nature.papers)
    assert nature.papers[0].title == "Catalysis of an SN2 pathway by geometric preorganization"
    assert len(nature.papers[0].authors) == 3


def test_hostile_feed_text_is_plain_and_header_safe() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Evil &lt;img src=x onerror=alert(1)&gt;title\r
Bcc: victim@example.com</title>
<link>javascript:alert(1)</link><guid>https://example.org/p/1</guid>
<description>&lt;p onclick="steal()"&gt;Hello &amp;amp; &lt;b&gt;world&lt;/b&gt;
&lt;script&gt;alert(2)&lt;/script&gt;
&amp;lt;script&amp;gt;alert(3)&amp;lt;/script&amp;gt; $a&lt;b$&lt;/p&gt;</description>
<author>Mallory\x0b &lt;script&gt;x&lt;/script&gt;, Eve and Bob</author></item>
</channel></rss>"""
    result = parse_bytes(src("evil", "feed", "x"), body)
    assert result.ok and len(result.papers) == 1
    paper = result.papers[0]
    assert paper.title == "Evil title Bcc: victim@example.com"
    assert paper.abstract.startswith("Hello & world")
    assert "$a<b$" in paper.abstract
    assert paper.url == ""  # a javascript: link is not kept
    assert paper.id.startswith("url:")
    for text in stored_text([paper]):
        assert not DANGER.search(text) and "alert(" not in text
    assert paper.authors == ("Mallory", "Eve", "Bob")


def test_ids_from_every_place_an_arxiv_id_hides() -> None:
    from newsletter.sources.normalize import arxiv_id, canonical_id

    assert arxiv_id("oai:arXiv.org:2411.17700v3") == ("2411.17700", 3)
    assert arxiv_id("https://arxiv.org/pdf/2411.17700v2") == ("2411.17700", 2)
    assert arxiv_id("https://huggingface.co/papers/2608.19880") == ("2608.19880", None)
    assert arxiv_id("10.48550/arXiv.2411.17700") == ("2411.17700", None)
    assert arxiv_id("http://arxiv.org/abs/hep-ex/0101001v1") == ("hep-ex/0101001", 1)
    assert arxiv_id("https://example.org/2411.17700") == (None, None)
    assert canonical_id(arxiv=None, doi="10.1101/ABC", link="x") == "doi:10.1101/abc"
    link_id = canonical_id(arxiv=None, doi=None, link="https://example.org/a")
    assert link_id == canonical_id(arxiv=None, doi=None, link="https://example.org/a")
    assert link_id and link_id.startswith("url:")


def test_many_bad_entries_give_a_few_warning_lines() -> None:
    items = "".join(
        f"<item><description>  </description><guid>{i}</guid></item>" for i in range(50)
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )
    result = parse_bytes(src("bad", "feed", "x"), body.encode())
    assert result.ok and result.fetched == 50 and result.skipped == 50 and not result.papers
    assert len(result.warnings) == 6 and result.warnings[-1] == "... and 45 more warnings"


@pytest.mark.parametrize(
    ("name", "type_"),
    [
        ("hf_papers_community_rss_2026-08-21.xml", "feed"),
        ("hf_papers_community_jsonfeed_2026-08-21.json", "jsonfeed"),
    ],
)
def test_scraped_hugging_face_pages_keep_the_authors_abstract_only(
    feeds: Path, name: str, type_: str
) -> None:
    """The community scrapes put "Abstract", an AI-written summary and "Generated by
    <model>" before the real abstract; only the real one is kept (shown, and indexed)."""
    papers = parse_bytes(src("s", type_, name), (feeds / name).read_bytes()).papers
    assert len(papers) == 26
    for paper in papers:
        assert not paper.abstract.startswith("Abstract"), paper.abstract[:80]
        assert "Generated by" not in paper.abstract and "Inkling" not in paper.abstract
    first = {p.id: p.abstract for p in papers}["2608.19880"]
    assert first.startswith("LLM agents learn by interacting with environments")
    # The one page without an AI summary loses only the word "Abstract".
    assert any(p.abstract.startswith("Customer-service LLM agents") for p in papers)


def test_hf_page_abstract_leaves_other_text_alone() -> None:
    from newsletter.sources.normalize import hf_page_abstract

    plain = "We study X. Data generated by GPT-4/turbo models are used."
    assert hf_page_abstract(plain) == plain
    assert hf_page_abstract("Abstract") == "Abstract"  # nothing after it: left alone
    assert hf_page_abstract("Abstract We study X.") == "We study X."
    assert hf_page_abstract("Abstract X does Y. AI-generated summary We study X.") == "We study X."


# -- malformed XML: reported as malformed, and the fetch table says "partial" --------------

QUANT_PH = "arxiv_rss_quant-ph_2025-04-28.xml"


def _truncated(feeds: Path, tmp_path: Path, size: int, name: str = "cut.xml") -> Path:
    """The real quant-ph day cut after ``size`` bytes (a truncated download)."""
    path = tmp_path / name
    path.write_bytes((feeds / QUANT_PH).read_bytes()[:size])
    return path


@pytest.mark.parametrize("type_", ["arxiv", "feed"])
def test_a_truncated_feed_is_malformed_with_its_entries_kept(
    store, feeds: Path, tmp_path: Path, type_: str
) -> None:
    from newsletter.sources import fetch_status

    path = _truncated(feeds, tmp_path, 6000)
    report = fetch_source(src("cut", type_, str(path)), store)
    assert report.ok and report.fetched >= 1 and report.new == report.fetched
    line = path.read_bytes().count(b"\n") + 1  # the parser stopped at the end of the file
    (warning,) = [w for w in report.warnings if "malformed" in w]
    assert warning == (
        f"source 'cut': malformed feed from {path} (XML error at line {line}, column 2: "
        f"no element found); {report.fetched} entries recovered and kept"
    )
    assert fetch_status(report) == (
        f"partial: malformed feed, {report.fetched} entries recovered (see the warning)"
    )
    state = store.fetch_state("cut")
    assert state.last_status == "partial" and f"malformed feed from {path}" in state.last_error


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(None, id="real-feed-cut-in-its-first-title"),
        pytest.param(b"<rss><channel><item><title>x</tit", id="the-reported-body"),
    ],
)
def test_an_arxiv_feed_cut_before_any_id_is_malformed_not_another_kind_of_feed(
    store, feeds: Path, tmp_path: Path, cut: bytes | None
) -> None:
    body = (feeds / QUANT_PH).read_bytes()
    if cut is None:
        first_title = body.index(b"<title>", body.index(b"<item>"))
        cut = body[: first_title + len(b"<title>") + 12]
    path = tmp_path / "cut.xml"
    path.write_bytes(cut)
    report = fetch_source(src("cut", "arxiv", str(path)), store)
    (error,) = report.errors
    assert error.startswith(f"source 'cut': malformed feed from {path} (XML error at line ")
    assert "1 entry recovered, none with an arXiv id, so nothing was stored" in error
    assert "not an arXiv feed" not in error and "type 'feed'" not in error
    assert store.count_papers() == 0 and store.fetch_state("cut").last_status == "error"


def test_a_truncated_body_without_xml_declaration_gives_the_files_own_line(
    feeds: Path, tmp_path: Path
) -> None:
    # feedparser puts an XML declaration line in front of such a body; the line
    # reported is the file's, not feedparser's.
    body = b"\n\n<rss><channel><item><title>x</tit"
    result = parse_bytes(src("s", "feed", "cut.xml"), body)
    assert "(XML error at line 3, column 29: unclosed token)" in result.warnings[0]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'<?xml version="1.0"?>\n<rss><channel><item><title>x</tit', id="one-line"),
        pytest.param(
            b'<?xml\n\n version="1.0" encoding="utf-8"?>\n<rss><channel><item><title>x</tit',
            id="three-lines",
        ),
        pytest.param(b'<?xml version="1.0"\n\n<rss', id="declaration-never-closed"),
    ],
)
def test_a_truncated_body_with_a_declaration_gives_the_files_own_line(body: bytes) -> None:
    # feedparser replaces a declaration with one on a single line (or, when it finds no
    # end to it, puts one in front); the line reported is still the file's, the line
    # the XML parser gives for the file itself.
    import xml.sax

    with pytest.raises(xml.sax.SAXParseException) as raised:
        xml.sax.parseString(body, xml.sax.ContentHandler())
    line = raised.value.getLineNumber()
    result = parse_bytes(src("s", "feed", "cut.xml"), body)
    said = [m for m in result.warnings + result.errors if "XML error at line" in m]
    assert len(said) == 1 and f"XML error at line {line}, column " in said[0]


def test_the_fetch_table_says_partial_for_a_truncated_feed(feeds: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from newsletter.cli import cli

    _truncated(feeds, tmp_path, 6000)
    (tmp_path / "whole.xml").write_bytes((feeds / QUANT_PH).read_bytes())
    cfg = tmp_path / "subscribers.yaml"
    cfg.write_text(
        """\
state: state.db
sources:
  - {name: cut-arxiv, type: arxiv, url: cut.xml}
  - {name: cut-feed, type: feed, url: cut.xml}
  - {name: whole, type: arxiv, url: whole.xml}
delivery: {from: "Digest <digest@example.org>", transport: outbox, outbox: outbox}
subscribers:
  - email: a@example.org
    interests: [{name: q, keywords: [quantum]}]
""",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(cfg), "fetch"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    for name in ("cut-arxiv", "cut-feed"):
        assert rows[name].endswith("partial: malformed feed, 3 entries recovered (see the warning)")
    assert rows["whole"].endswith("  ok")


# -- a whole download has a deadline (DEADLINE_FACTOR x the source's timeout) ------------------


@dataclass
class Trickler:
    """A raw HTTP server that answers slowly: a byte of the body (or of the headers) at a time,
    or the headers and then nothing. It gives up by itself after ``give_up`` seconds, so a
    client without a deadline makes a test fail rather than hang."""

    base: str
    give_up: float = 6.0
    connections: int = 0
    closed_by_client: list[float] = field(default_factory=list)  # monotonic times
    stop: threading.Event = field(default_factory=threading.Event)


def _trickle(state: Trickler, conn: socket.socket) -> None:
    started = time.monotonic()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        path = request.split(b" ", 2)[1].decode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 100000\r\n"
        try:
            if path == "/trickle-headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                drip = b"X-Slow: " + b"a" * 10_000
            else:
                conn.sendall(head + b"\r\n")
                drip = b'<?xml version="1.0"?><rss version="2.0"><channel>' + b" " * 100_000
            if path == "/stall":
                drip = b""
            for byte in (drip[i : i + 1] for i in range(len(drip))):
                if state.stop.wait(0.05) or time.monotonic() - started > state.give_up:
                    return
                conn.sendall(byte)
            state.stop.wait(state.give_up)
        except OSError:  # the client closed the connection
            state.closed_by_client.append(time.monotonic())


@pytest.fixture()
def trickler() -> Iterator[Trickler]:
    listener = socket.create_server(("127.0.0.1", 0))
    state = Trickler(base=f"http://127.0.0.1:{listener.getsockname()[1]}")

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            state.connections += 1
            threading.Thread(target=_trickle, args=(state, conn), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield state
    finally:
        state.stop.set()
        listener.close()


def test_a_trickling_body_is_stopped_at_the_deadline(store, trickler: Trickler) -> None:
    source = src("drip", "feed", f"{trickler.base}/trickle-body", timeout=0.4, retries=0)
    started = time.monotonic()
    report = fetch_source(source, store, backoff=FAST)
    elapsed = time.monotonic() - started
    assert len(report.errors) == 1
    error = report.errors[0]
    assert error.startswith(f"source 'drip': {trickler.base}/trickle-body sent "), error
    assert re.search(r"sent \d+ bytes in 1\.\d s and was not done; gave up", error), error
    assert error.endswith(
        "(one download may take 3 x the source's timeout of 0.4 s = 1.2 s;"
        " raise timeout if the server is just slow) (1 attempt)"
    )
    assert 1.2 <= elapsed < 2.0  # the deadline, not the server's 6 s of trickling
    # the connection was closed: the server's next write failed soon after the deadline
    time.sleep(0.3)
    assert trickler.closed_by_client and trickler.closed_by_client[0] - started < 2.3
    assert store.fetch_state("drip").last_status == "error"


def test_trickling_headers_are_stopped_at_the_deadline(store, trickler: Trickler) -> None:
    source = src("hdr", "feed", f"{trickler.base}/trickle-headers", timeout=0.4, retries=0)
    started = time.monotonic()
    report = fetch_source(source, store, backoff=FAST)
    elapsed = time.monotonic() - started
    assert len(report.errors) == 1
    assert f"{trickler.base}/trickle-headers sent no complete response in 1." in report.errors[0]
    assert "gave up (one download may take 3 x the source's timeout" in report.errors[0]
    assert 1.2 <= elapsed < 1.8  # ended by the deadline's shutdown, not a read's timeout


def test_silence_after_the_headers_is_a_read_timeout(store, trickler: Trickler) -> None:
    source = src("mute", "feed", f"{trickler.base}/stall", timeout=0.4, retries=0)
    started = time.monotonic()
    report = fetch_source(source, store, backoff=FAST)
    elapsed = time.monotonic() - started
    assert report.errors == (
        f"source 'mute': timed out after 0.4 s (ReadTimeout) fetching {trickler.base}/stall"
        " (1 attempt)",
    )
    assert elapsed < 1.0


def test_a_too_slow_attempt_is_retried_like_a_timeout(store, trickler: Trickler) -> None:
    source = src("drip2", "feed", f"{trickler.base}/trickle-body", timeout=0.3, retries=1)
    started = time.monotonic()
    report = fetch_source(source, store, backoff=FAST)
    elapsed = time.monotonic() - started
    assert len(report.errors) == 1 and report.errors[0].endswith("(2 attempts)")
    assert "= 0.9 s; raise timeout" in report.errors[0]
    assert trickler.connections == 2
    assert 1.8 <= elapsed < 2.8  # two attempts of 0.9 s


def test_fetch_all_a_trickling_source_never_holds_up_the_others(
    store, server: Server, trickler: Trickler, feeds: Path, tmp_path: Path
) -> None:
    config = Config(
        path=tmp_path / "subscribers.yaml",
        state=str(tmp_path / "state.db"),
        subscribers=(),
        sources=(
            src("drip", "feed", f"{trickler.base}/trickle-body", timeout=0.5, retries=0),
            src("quant", "arxiv", f"{server.base}/feeds/arxiv_rss_quant-ph_2025-04-28.xml"),
            src("hf", "hf_daily", str(feeds / HF_API)),
        ),
    )
    started = time.monotonic()
    reports = fetch_all(config, store, backoff=FAST)
    elapsed = time.monotonic() - started
    assert [r.name for r in reports] == ["drip", "quant", "hf"]
    assert [r.ok for r in reports] == [False, True, True]
    assert [r.new for r in reports] == [0, 50, 30]
    assert "and was not done; gave up" in reports[0].errors[0]
    assert elapsed < 2.5  # the 1.5 s deadline plus a margin


# -- source authority: a feed naming an arXiv id cannot rewrite that paper ----------------

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "arxiv-sample.xml"
GENUINE_TITLE = "Patch-Mixing Transformers for Long-Horizon Time Series Forecasting"
PADDING = "This sentence only makes the poisoned abstract longer than the real one. " * 8
POISON = (
    "POISONED ABSTRACT: time series forecasting. Your access to this paper expired; "
    f"re-enter your institutional login at https://evil.example/login to keep reading. {PADDING}"
)


def _blog(tmp_path: Path, link: str, more: str = "") -> Path:
    """A one-item RSS feed (a blog) naming sample paper 2611.99001 through its link."""
    path = tmp_path / "blog.xml"
    path.write_text(
        f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>
<link>https://blog.example/</link><description>b</description>
<item><title>A hijacked title</title><link>{link}</link>
<guid>https://blog.example/post1</guid><author>Mallory Poisoner</author>
<category>phishing</category>{more}<description>{POISON}</description></item>
</channel></rss>""",
        encoding="utf-8",
    )
    return path


def test_a_blog_cannot_plant_an_abstract_or_a_hugging_face_link_end_to_end(
    tmp_path: Path,
) -> None:
    """The review's repro through the real CLI: fetch (both sources from local files,
    in parallel, so in either order), then send to the outbox."""
    import email
    import email.policy

    from click.testing import CliRunner

    from newsletter.cli import cli
    from newsletter.store import Store

    _blog(tmp_path, "https://evil.example/phish?huggingface.co/papers/2611.99001")
    assert len(POISON) > len(
        parse_bytes(src("a", "arxiv", "x"), SAMPLE.read_bytes()).papers[0].abstract
    )
    cfg = tmp_path / "subscribers.yaml"
    cfg.write_text(
        f"""\
state: state.db
sources:
  - {{name: arxiv, type: arxiv, url: {SAMPLE}}}
  - {{name: blog, type: feed, url: blog.xml}}
delivery: {{from: "Digest <digest@example.org>", transport: outbox, outbox: outbox}}
web: {{base_url: https://digest.example.org}}
subscribers:
  - email: ada@example.org
    timezone: UTC
    interests: [{{name: Forecasting, keywords: [patch-mixing transformers]}}]
""",
        encoding="utf-8",
    )
    fetched = CliRunner().invoke(cli, ["--config", str(cfg), "fetch"])
    assert fetched.exit_code == 0, fetched.output
    sent = CliRunner().invoke(cli, ["--config", str(cfg), "send", "--no-fetch"])
    assert sent.exit_code == 0, sent.output
    (eml,) = (tmp_path / "outbox").rglob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    parts = [p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"]
    assert len(parts) == 2 and all("2611.99001" in part for part in parts)
    for part in parts:
        assert GENUINE_TITLE in part
        assert "evil.example" not in part and "POISONED" not in part
        assert "huggingface.co" not in part  # no Hugging Face link at all: none is genuine
    with Store(tmp_path / "state.db") as store:
        paper = store.get_paper("2611.99001")
    assert paper is not None and paper.hf_url is None
    assert paper.abstract.startswith("Sample paper written for the newsletter demo.")


def test_a_blog_that_names_a_paper_first_is_overruled_by_arxiv(store, tmp_path: Path) -> None:
    pdf = '<enclosure url="https://evil.example/paper.pdf" length="1" type="application/pdf"/>'
    blog = _blog(tmp_path, "https://blog.example/post1?about=arXiv:2611.99001", pdf)
    first = fetch_source(src("blog", "feed", str(blog)), store)
    assert (first.new, first.errors) == (1, ())
    planted = store.get_paper("2611.99001")
    assert planted is not None and planted.title == "A hijacked title"  # alone, it is shown
    assert planted.pdf_url == "https://evil.example/paper.pdf"

    arxiv = fetch_source(src("arxiv", "arxiv", str(SAMPLE)), store)
    assert arxiv.duplicate == 1
    paper = store.get_paper("2611.99001")
    assert paper is not None
    assert paper.title == GENUINE_TITLE
    assert paper.abstract.startswith("Sample paper written for the newsletter demo.")
    assert paper.authors == ("Alice Sample", "Bob Example", "Chen Placeholder")
    assert paper.categories == ("cs.LG", "stat.ML")
    assert paper.url == "https://arxiv.org/abs/2611.99001"
    assert paper.pdf_url is not None and "evil.example" not in paper.pdf_url
    assert paper.source == "blog"  # still the source that supplied it first

    # ... and the blog again (next fetch) changes nothing.
    fetch_source(src("blog", "feed", str(blog)), store)
    assert store.get_paper("2611.99001") == paper


@pytest.mark.parametrize(
    ("link", "hf"),
    [
        ("https://huggingface.co/papers/2611.99001", True),
        ("https://HuggingFace.co/papers/2611.99001v2/?utm=x#top", True),
        ("https://hf.co/papers/2611.99001", True),
        ("https://evil.example/phish?huggingface.co/papers/2611.99001", False),
        ("https://evil.example/huggingface.co/papers/2611.99001", False),
        ("https://huggingface.co.evil.example/papers/2611.99001", False),
        ("https://huggingface.co@evil.example/papers/2611.99001", False),
        ("https://x@huggingface.co/papers/2611.99001", False),
        ("http://huggingface.co/papers/2611.99001", False),
        ("https://huggingface.co/papers/2611.99001/../../evil", False),
        ("https://huggingface.co/spaces/x?papers/2611.99001", False),
    ],
)
def test_only_a_genuine_hugging_face_paper_page_becomes_hf_url(link: str, hf: bool) -> None:
    """Both generic parsers; the entry's id comes from its guid, so every link is tried."""
    from html import escape

    guid = "oai:arXiv.org:2611.99001"
    rss = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>T</title><link>{escape(link)}</link><guid>{guid}</guid>"
        f"<description>Abstract text.</description></item></channel></rss>"
    ).encode()
    jf = (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": '
        f'[{{"id": "{guid}", "url": "{link}", "title": "T", "content_text": "Abstract."}}]}}'
    ).encode()
    for type_, body in (("feed", rss), ("jsonfeed", jf)):
        (paper,) = parse_bytes(src("s", type_, "x"), body).papers
        assert paper.id == "2611.99001"
        want = "https://huggingface.co/papers/2611.99001" if hf else None
        assert paper.hf_url == want, (type_, link)


def test_a_hugging_face_page_of_another_paper_is_not_this_papers_hf_url() -> None:
    from newsletter.sources.feed import hf_paper_url

    assert hf_paper_url("https://huggingface.co/papers/2611.99002", "2611.99001") is None
    assert hf_paper_url("https://huggingface.co/papers/2611.990011", "2611.99001") is None
    assert hf_paper_url("https://huggingface.co:8443/papers/2611.99001", "2611.99001") is None
    assert hf_paper_url("https://huggingface.co:bad/papers/2611.99001", "2611.99001") is None
    assert hf_paper_url("https://huggingface.co/papers/2611.99001", None) is None


# -- author lists and LaTeX accents ------------------------------------------------------


def test_author_affiliations_are_not_split_on_and(store, feeds: Path) -> None:
    # 2411.17817 gives each author's affiliation in parentheses, with " and " inside
    # ("School of Physics and Astronomy"): that " and " split one name into fragments.
    assert fetch_source(src("a", "arxiv", str(feeds / BIG_DAY)), store).new == 935
    paper = store.get_paper("2411.17817")
    assert paper is not None and len(paper.authors) == 8
    assert paper.authors[-1] == (
        "Denis Martynov (University of Birmingham, School of Physics and Astronomy, "
        "Birmingham, United Kingdom)"
    )
    assert all(a.count("(") == a.count(")") == 1 for a in paper.authors)
    assert not any(a.startswith(("Astronomy", "Technology", "Quantum")) for a in paper.authors)


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("A. Smith (Physics and Astronomy), B. Jones and C. Wu", ["A. Smith", "B. Jones", "C. Wu"]),
        ("A. Smith (X & Y) and B. Jones [Art and Craft]", ["A. Smith", "B. Jones [Art and Craft]"]),
        ("Sofie Castro Holb{\\ae}k and Rasmus Mar{\\aa}k", ["Sofie Castro Holbæk", "Rasmus Maråk"]),
    ],
)
def test_split_authors_splits_on_and_at_the_top_level_only(raw: str, names: list[str]) -> None:
    from newsletter.sources.normalize import split_authors

    got = split_authors(raw)
    assert [n.split(" (")[0] for n in got] == names
    assert len(got) == len(names)


@pytest.mark.parametrize(
    ("latex", "text"),
    [
        ('Schr\\"odinger', "Schrödinger"),
        ('Schr\\"{o}dinger', "Schrödinger"),
        ('Schr{\\"o}dinger', "Schrödinger"),
        ('Schr{\\"{o}}dinger', "Schrödinger"),
        ("Vavry\\v{c}uk, Maru\\v si\\v c", "Vavryčuk, Marušič"),
        ("Pawe{\\l} \\.Zygierewicz", "Paweł Żygierewicz"),
        ("Kad{\\i}o\\u{g}lu, Frol\\'{\\i}k, Lema\\^{\\i}tre", "Kadıoğlu, Frolík, Lemaître"),
        (
            "Erd\\H{o}s, Mendon\\c{c}a, \\k{a}, \\r{u}, \\d{s}, \\b{b}",
            "Erdős, Mendonça, ą, ů, ṣ, ḇ",
        ),
        ("\\`a la, Ma\\~nas, \\=a, \\'Agnes, na\\\"\\i ve", "à la, Mañas, ā, Ágnes, naïve"),
        (
            "Stra\\ss e, Sj{\\o}rup, \\O, \\AA, \\ae\\AE, \\oe\\OE, \\L\\'od\\'z",
            "Straße, Sjørup, Ø, Å, æÆ, œŒ, Łódź",
        ),
        ("\\t{oo}", "o\u0361o"),
        # Math and other LaTeX stay as they are.
        ('$\\"a + \\bar{x}$ and \\(\\v{c}\\) with \\alpha, \\in, \\lambda', None),
        ('\\\'{} and \\^{} and \\"mind\\"', None),
    ],
)
def test_latex_accents_become_unicode(latex: str, text: str | None) -> None:
    from newsletter.sources.normalize import clean_line, clean_text, decode_latex

    assert decode_latex(latex) == (text or latex)
    assert clean_line(latex) == clean_text(latex) == (text or latex)


def test_latex_accents_are_decoded_in_stored_titles_abstracts_and_authors(
    store, feeds: Path
) -> None:
    assert fetch_source(src("a", "arxiv", str(feeds / BIG_DAY)), store).new == 935
    by_id = {p.id: p for p in store.papers()}
    assert by_id["2411.17775"].authors == ("Václav Vavryčuk",)
    assert "Frank Göhmann" in by_id["2411.17877"].authors
    assert "Benjamin Rémy (LEMTA)" in by_id["2411.17748"].authors
    assert "Serdar Kadıoğlu" in by_id["2411.17796"].authors
    assert "Paweł Niedbalski" in by_id["2411.17709"].authors
    assert "nonlinear Schrödinger equations" in by_id["2411.18341"].title
    assert "Schrödinger" in by_id["2411.18341"].abstract
    assert by_id["2411.18468"].title == "Parole de présidents (1958-2022)"
    accent = re.compile(r"\\[\"'`^~]\{?[A-Za-z]|\{\\[lio]\}|\\[vuHc]\{[A-Za-z]\}")
    for paper in by_id.values():
        outside_math = re.sub(r"\$[^$]*\$", "", " ".join(stored_text([paper])))
        assert not accent.search(outside_math), paper.id
    assert "$B_\\infty$" in by_id["2411.18458"].title  # math stays LaTeX
