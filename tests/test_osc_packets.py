"""The packet parser: python-osc's results, with its hazards kept away from it."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.osc.packets import MalformedPacket, UnsupportedTypeTag, parse_packet, reference_parse


def build(address: str, args) -> bytes:
    b = OscMessageBuilder(address)
    for kind, value in args:
        b.add_arg(value, kind)
    return b.build().dgram


_value = st.one_of(st.tuples(st.just("f"), st.floats(width=32, allow_nan=False)),
                   st.tuples(st.just("i"), st.integers(-2**31, 2**31 - 1)),
                   st.tuples(st.just("s"), st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)),  # OSC strings end at NUL; lone surrogates are not text UTF-8 can carry
                   st.tuples(st.just("d"), st.floats(allow_nan=False)),
                   st.tuples(st.just("T"), st.just(True)))
_address = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30).map(lambda s: "/" + s.replace("\x00", ""))


@settings(max_examples=500, deadline=None)
@given(address=_address, args=st.lists(_value, max_size=6))
def test_valid_messages_parse_as_python_osc_parses_them(address, args):
    data = build(address, args)
    assert repr(parse_packet(data)) == repr(reference_parse(data))


@settings(max_examples=500, deadline=None)
@given(head=st.sampled_from([b"/a\x00\x00,ff\x00", b"/crowd/x/touch\x00\x00,fff\x00\x00\x00\x00",
                             b"/x\x00\x00,i\x00\x00", b"/x\x00\x00", b"/\x00\x00\x00,\x00\x00\x00", b"/"]),
       tail=st.binary(max_size=24))
def test_any_bytes_parse_as_python_osc_or_both_refuse(head, tail):
    data = head + tail
    try:
        ref = reference_parse(data)
    except Exception:  # noqa: BLE001 - python-osc raises several kinds
        ref = None
    try:
        ours = parse_packet(data)
    except Exception:  # noqa: BLE001
        ours = None
    # we may refuse more (a broken bundle), never differ; repr compares NaN with NaN
    assert repr(ours) == repr(ref) or (ours is None and isinstance(ref, list))


def test_arguments_cut_short_are_malformed_not_padded():
    """python-osc pads them with zeros: an emotion missing its arousal would arrive as 0.0."""
    assert reference_parse(b"/crowd/x/motion\x00,f\x00\x00") == [("/crowd/x/motion", [0.0])]
    for data in (b"/x\x00\x00,f\x00\x00\x3f\x80",                      # two bytes of 1.0f
                 b"/crowd/x/motion\x00,f\x00\x00",                       # no data at all
                 b"/crowd/x/emotion\x00\x00\x00\x00,ff\x00\x3f\x00\x00\x00",   # one float of two
                 b"/x\x00\x00,sf\x00\x00\x00\x00ab\x00\x00",              # the float after the string
                 b"/x\x00\x00,d\x00\x00\x3f\xf0\x00\x00"):               # half a double
        with pytest.raises(MalformedPacket, match="cut short"):
            parse_packet(data)
    assert parse_packet(b"/x\x00\x00,f\x00\x00\x3f\x80\x00\x00") == [("/x", [1.0])]


def test_bundles_in_timetag_order_and_nested():
    inner = OscBundleBuilder(IMMEDIATELY)
    m = OscMessageBuilder("/b")
    m.add_arg(2.0)
    inner.add_content(m.build())
    outer = OscBundleBuilder(IMMEDIATELY)
    m = OscMessageBuilder("/a")
    m.add_arg(1)
    outer.add_content(m.build())
    outer.add_content(inner.build())
    data = outer.build().dgram
    assert parse_packet(data) == [("/a", [1]), ("/b", [2.0])]


@pytest.mark.parametrize("data", [
    b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -4),   # python-osc would loop forever
    b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 0),
    b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 64) + b"/x\x00\x00",
    b"#bundle\x00\x00",
    b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 4) + b"junk",
])
def test_broken_bundles_are_refused_before_python_osc(data):
    with pytest.raises(MalformedPacket):
        parse_packet(data)


def test_unknown_type_tags_are_refused_not_skipped():
    with pytest.raises(UnsupportedTypeTag):
        parse_packet(b"/x\x00\x00,fQ\x00" + struct.pack(">f", 1.0))
    inner = b"/x\x00\x00,Z\x00\x00"
    with pytest.raises(UnsupportedTypeTag):
        parse_packet(b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", len(inner)) + inner)
