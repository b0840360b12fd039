"""Selection: which papers each subscriber gets, ranked, with reasons.

Public API (implemented by the selection work, issue 4):

    class Selector:
        def __init__(self, papers: Sequence[Paper], settings: SelectionConfig) -> None
            Index the candidate papers once (BM25 etc.).
        def select(self, subscriber: Subscriber, *, edition: str, edition_date: date,
                   exclude_ids: Collection[str] = (),
                   feedback: Mapping[str, int] | None = None,
                   feedback_papers: Sequence[Paper] = ()) -> Digest
            Sections per interest within quotas, each Pick with score and reasons;
            papers in ``exclude_ids`` (already sent) never picked; an empty digest
            carries ``empty_reason``.
"""
