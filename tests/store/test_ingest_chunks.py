"""How the ingest hot path splits rows into multi-row statements (store.ingest.chunk_sizes)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from geosentinel.store.ingest import chunk_sizes


@given(st.integers(0, 20_000), st.integers(1, 5_000))
def test_every_row_lands_in_exactly_one_statement_within_the_limit(count: int, limit: int) -> None:
    sizes = chunk_sizes(count, limit)
    assert sum(sizes) == count
    assert all(0 < size <= limit for size in sizes)


def test_a_table_needs_a_handful_of_statement_texts_whatever_the_batch_sizes() -> None:
    # One text per row count missed the driver's statement cache (128 entries) at nearly every batch.
    texts = {size for count in range(1, 5_001) for size in chunk_sizes(count, 695)}
    assert texts == {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
    assert chunk_sizes(1_500, 695) == [512, 512, 256, 128, 64, 16, 8, 4]
