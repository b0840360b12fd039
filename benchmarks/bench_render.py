"""Rendering speed: compile once + Jinja per email vs compiling per email, same run.

    .venv/bin/python benchmarks/bench_render.py [--n 2000]

Both render the same 10-paper digest (the golden-file digest from the tests) for ``n``
subscribers. The baseline does what a naive implementation does per subscriber: render
the Jinja-in-MJML source, compile the MJML, inline the CSS. ``Renderer`` compiles the MJML
and inlines the CSS once at construction, then runs only Jinja per subscriber (plus the
text part and subject, which the baseline skips). A second baseline renders the same
templates with their ``{% cache %}`` blocks removed (each paper's own fields rendered again
for every reader; the output is checked to be the same): what the fragment cache saves.
Prints emails/s on one core, the ratios, the construction cost and the HTML size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import css_inline
import jinja2
import mjml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_render_fixtures import LINKS, fixed_digest

from newsletter.render import (
    _INLINE_STYLE,
    FragmentCache,
    Renderer,
    default_templates,
    without_cache_blocks,
)
from newsletter.signing import Links


def _without_cache_blocks(folder: Path) -> Path:
    """The packaged templates with their ``cache`` blocks made plain ``if true`` blocks."""
    for name in ("digest.mjml", "digest.txt", "subject.txt"):
        text = (default_templates() / name).read_text(encoding="utf-8")
        (folder / name).write_text(without_cache_blocks(text), encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="emails per variant")
    args = parser.parse_args()
    digest = fixed_digest(10)
    links = [Links(LINKS.base_url, LINKS.secret, f"reader{i}@example.org") for i in range(args.n)]

    t0 = time.perf_counter()
    renderer = Renderer()
    construct_ms = (time.perf_counter() - t0) * 1000

    # Baseline: Jinja on the MJML source, then MJML + CSS inlining for every email.
    source = (default_templates() / "digest.mjml").read_text(encoding="utf-8")
    inline_css = "\n".join(m.group(1) for m in _INLINE_STYLE.finditer(source))
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, extensions=[FragmentCache]
    )
    source_template = env.from_string(_INLINE_STYLE.sub("", source))
    inliner = css_inline.CSSInliner(
        inline_style_tags=False, load_remote_stylesheets=False, extra_css=inline_css
    )
    n_base = max(50, args.n // 10)  # the slow path: fewer iterations, same per-email figure
    t0 = time.perf_counter()
    for link in links[:n_base]:
        ctx = renderer.context(digest, links=link)
        inliner.inline(mjml.mjml2html(source_template.render(ctx), fonts={}))
    base = (time.perf_counter() - t0) / n_base

    t0 = time.perf_counter()
    for link in links:
        email = renderer.render(digest, links=link)
    ours = (time.perf_counter() - t0) / args.n

    # The same templates without their cache blocks (every paper's fields rendered for
    # every reader): what the fragment cache saves. Same output, checked.
    with tempfile.TemporaryDirectory() as tmp:
        plain = Renderer(_without_cache_blocks(Path(tmp)))
    t0 = time.perf_counter()
    for link in links:
        plain_email = plain.render(digest, links=link)
    uncached = (time.perf_counter() - t0) / args.n
    if plain_email != email:
        raise SystemExit("Error: the templates render differently without their cache blocks")

    print(f"render, 10-paper digest, {args.n} emails (baseline {n_base}), one core")
    print(
        f"  Renderer() construction (MJML compile + CSS inline + smoke renders): "
        f"{construct_ms:.1f} ms, once per process"
    )
    print(f"  baseline, MJML+CSS per email: {base * 1000:7.3f} ms/email  {1 / base:8.0f} emails/s")
    print(
        f"  Renderer.render (Jinja only): {ours * 1000:7.3f} ms/email  {1 / ours:8.0f} emails/s"
        "  (HTML + text + subject)"
    )
    print(
        f"  without cache blocks:         {uncached * 1000:7.3f} ms/email  {1 / uncached:8.0f}"
        " emails/s  (same output)"
    )
    print(
        f"  speed-up: {base / ours:.1f}x over MJML per email, {uncached / ours:.1f}x over no cache"
    )
    print(
        f"  HTML size: {len(email.html.encode()):,} bytes (Gmail clips at 104,448); "
        f"text part: {len(email.text.encode()):,} bytes"
    )


if __name__ == "__main__":
    main()
