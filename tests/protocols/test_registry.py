"""Every protocol is registered, documented and tested the same way (name = module = doc = test file)."""

from __future__ import annotations

from pathlib import Path

from geosentinel.protocols import REGISTRY, STREAM_CODECS

ROOT = Path(__file__).parents[2]


def test_every_protocol_has_its_doc_tests_and_cases() -> None:
    assert set(REGISTRY) == {"osmand", "watch", "gt06", "h02", "mqtt"}
    for name in REGISTRY:
        assert (ROOT / "src" / "geosentinel" / "protocols" / f"{name}.py").exists(), name
        assert (ROOT / "docs" / "protocols" / f"{name}.md").exists(), name
        assert (ROOT / "tests" / "protocols" / f"test_{name}.py").exists(), name
    for name in ("osmand", *STREAM_CODECS):
        assert (ROOT / "tests" / "protocols" / "cases" / f"{name}.json").exists(), name


def test_ports_are_distinct_and_stream_codecs_are_tcp() -> None:
    ports = [spec.default_port for spec in REGISTRY.values()]
    assert len(set(ports)) == len(ports)
    assert {spec.name: spec.default_port for spec in REGISTRY.values()} == {
        "osmand": 5055, "watch": 5093, "gt06": 5023, "h02": 5013, "mqtt": 1883,
    }  # fmt: skip
    for name, codec in STREAM_CODECS.items():
        assert codec.spec.name == name and codec.spec.transport == "tcp"
        assert codec.framer().skipped == 0
