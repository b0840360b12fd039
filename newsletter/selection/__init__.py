"""Selection: which papers each subscriber gets, ranked, with reasons.

Public API (issue 4):

    class Selector:
        def __init__(self, papers: Sequence[Paper], settings: SelectionConfig) -> None
            Index the candidate papers once (BM25F over title and abstract, unigrams and
            bigrams, stemmed; pseudo-relevance expansion matrix; author index).
        def select(self, subscriber: Subscriber, *, edition: str, edition_date: date,
                   exclude_ids: Collection[str] = (),
                   feedback: Mapping[str, int] | None = None,
                   feedback_papers: Sequence[Paper] = ()) -> Digest
            Sections per interest within quotas, each Pick with score (0..1) and reasons;
            papers in ``exclude_ids`` (already sent) never picked; an empty digest
            carries ``empty_reason``.
        def select_many(self, subscribers, *, edition, edition_date,
                        exclude_ids: Mapping[email, Collection[str]] | None = None,
                        feedback: Mapping[email, Mapping[str, int]] | None = None,
                        feedback_papers: Sequence[Paper] = ()) -> list[Digest]
            The same for many subscribers at once (one sparse product per chunk);
            mappings are keyed by lower-cased email.

    names_match(wanted, candidate) -> bool      author-name matching
    TRENDING_SECTION                            name of the trending section
    NO_CANDIDATES                               empty_reason when nothing is new
"""

from typing import TYPE_CHECKING, Any

from .authors import names_match

if TYPE_CHECKING:
    from .selector import NO_CANDIDATES, TRENDING_SECTION, Selector, Weights

_SELECTOR_NAMES = frozenset({"NO_CANDIDATES", "TRENDING_SECTION", "Selector", "Weights"})


def __getattr__(name: str) -> Any:
    """The selector's names, imported when first used: ``selection.text`` (what the
    store needs to analyse a paper it stores) must not pull in numpy and scipy."""
    if name in _SELECTOR_NAMES:
        from . import selector

        return getattr(selector, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NO_CANDIDATES", "TRENDING_SECTION", "Selector", "Weights", "names_match"]
