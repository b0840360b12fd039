"""Rendering: Digest -> RenderedEmail (subject, HTML, text).

Public API (implemented by the rendering work, issue 5):

    class Renderer:
        def __init__(self, templates: Path | None = None, *, base_url: str = "") -> None
            Compile the MJML template once (mjml-python), inline its CSS once
            (css-inline), load the text template; a broken template raises
            TemplateError("<file>:<line>: <what>").
        def render(self, digest: Digest, *, links: Links) -> RenderedEmail
            Only Jinja runs per subscriber, with autoescape.
"""
