"""The real listener on loopback: real UDP datagrams, a real thread, the real counters."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.events import InputEvent
from installation.osc.listener import OscBindError, OscListener
from installation.osc.settings import OscSettings
from installation.osc.validate import REJECT_KINDS, sender_id

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


def msg(address: str, *args, types: str | None = None) -> bytes:
    b = OscMessageBuilder(address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


def msg_obj(address: str, *args):
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build()


def wait_for(cond, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


@pytest.fixture
def make_listener():
    made = []

    def make(**kw) -> OscListener:
        kw.setdefault("host", "127.0.0.1")
        kw.setdefault("port", 0)
        lst = OscListener(OscSettings(**kw), CONFIGS).start()
        made.append(lst)
        return lst
    yield make
    for lst in made:
        lst.stop()


@pytest.fixture
def sender():
    socks = []

    def make(bind_host: str = "127.0.0.1") -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((bind_host, 0))
        socks.append(s)
        return s
    yield make
    for s in socks:
        s.close()


def drain_n(lst: OscListener, n: int, timeout: float = 3.0) -> list[InputEvent]:
    got: list[InputEvent] = []
    wait_for(lambda: (got.extend(lst.drain()), len(got) >= n)[1], timeout)
    return got


EVERY_ADDRESS = [
    (msg("/crowd/p1/emotion", 0.5, 0.25), "/crowd/p1/emotion", (0.5, 0.25)),
    (msg("/crowd/p1/touch", 0.5, 0.5), "/crowd/p1/touch", (0.5, 0.5, 1.0)),
    (msg("/crowd/p1/touch", 0.5, 0.5, 0.25), "/crowd/p1/touch", (0.5, 0.5, 0.25)),
    (msg("/crowd/p1/motion", 0.75), "/crowd/p1/motion", (0.75,)),
    (msg("/crowd/p1/vote", "night"), "/crowd/p1/vote", ("night",)),
    (msg("/crowd/p1/leave"), "/crowd/p1/leave", ()),
    (msg("/sensor/door/level", 0.5), "/sensor/door/level", (0.5,)),
    (msg("/scene", "night"), "/scene", ("night",)),
    (msg("/scene", "night", 2.5), "/scene", ("night", 2.5)),
    (msg("/param/flow_strength", 0.75), "/param/flow_strength", (0.75,)),
    (msg("/pulse", 0.5), "/pulse", (0.5,)),
    (msg("/master/brightness", 0.25), "/master/brightness", (0.25,)),
    (msg("/master/volume", 0.5), "/master/volume", (0.5,)),
    (msg("/blackout", 1), "/blackout", (1,)),
    (msg("/record/start", "evening"), "/record/start", ("evening",)),
    (msg("/record/start"), "/record/start", ()),
    (msg("/record/stop"), "/record/stop", ()),
]


def test_every_contract_address_arrives_through_real_udp(make_listener, sender):
    lst = make_listener()
    s = sender()
    for data, _, _ in EVERY_ADDRESS:
        s.sendto(data, ("127.0.0.1", lst.port))
    events = drain_n(lst, len(EVERY_ADDRESS))
    src = f"127.0.0.1:{s.getsockname()[1]}"
    assert [(e.addr, e.args, e.src) for e in events] == [(a, args, src) for _, a, args in EVERY_ADDRESS]
    assert lst.received == len(EVERY_ADDRESS) and lst.rejected == 0
    assert all(e.t >= 0.0 for e in events)


def test_oscsend_int_and_float_arguments(make_listener, require):
    require(shutil.which("oscsend") is not None, "oscsend from liblo-tools (apt install liblo-tools)")
    lst = make_listener()
    sends = [
        ("/crowd/phone7/emotion", "if", "1", "0.5"),     # an int where a float is expected
        ("/crowd/phone7/emotion", "ff", "-0.25", "0.75"),
        ("/crowd/phone7/touch", "iii", "0", "1", "1"),
        ("/crowd/phone7/motion", "i", "3"),              # clamped to 1
        ("/blackout", "i", "1"),
        ("/blackout", "f", "0.0"),
        ("/master/volume", "i", "0"),
        ("/scene", "sf", "night", "1.5"),
        ("/crowd/phone7/motion", "s", "lots"),           # a string: rejected
    ]
    for address, types, *values in sends:
        subprocess.run(["oscsend", "127.0.0.1", str(lst.port), address, types, *values], check=True, timeout=10)
    assert wait_for(lambda: lst.received == len(sends))
    events = lst.drain()
    assert [(e.addr, e.types, e.args) for e in events] == [
        ("/crowd/phone7/emotion", "ff", (1.0, 0.5)),
        ("/crowd/phone7/emotion", "ff", (-0.25, 0.75)),
        ("/crowd/phone7/touch", "fff", (0.0, 1.0, 1.0)),
        ("/crowd/phone7/motion", "f", (1.0,)),
        ("/blackout", "i", (1,)),
        ("/blackout", "i", (0,)),
        ("/master/volume", "f", (0.0,)),
        ("/scene", "sf", ("night", 1.5)),
    ]
    assert lst.rejected == 1 and lst.rejected_by_kind["arg-type"] == 1


def test_bundles_are_unpacked_and_future_timetags_not_waited_for(make_listener, sender):
    lst = make_listener()
    inner = OscBundleBuilder(time.time() + 3600.0)     # an hour ahead: must not be waited for
    inner.add_content(msg_obj("/crowd/b/motion", 0.375))
    inner.add_content(msg_obj("/crowd/b/motion"))      # no argument: rejected, the rest kept
    outer = OscBundleBuilder(time.time() + 3600.0)
    outer.add_content(msg_obj("/crowd/b/emotion", 0.125, 0.25))
    outer.add_content(inner.build())
    t0 = time.monotonic()
    sender().sendto(outer.build().dgram, ("127.0.0.1", lst.port))
    events = drain_n(lst, 2, timeout=1.0)
    assert time.monotonic() - t0 < 0.9
    assert sorted((e.addr, e.args) for e in events) == [("/crowd/b/emotion", (0.125, 0.25)),
                                                        ("/crowd/b/motion", (0.375,))]
    assert wait_for(lambda: lst.received == 3)
    assert lst.rejected == 1 and lst.rejected_by_kind["arg-count"] == 1


def test_aliases_through_the_listener_take_the_id_from_the_sender(make_listener, sender):
    lst = make_listener()
    s = sender()
    s.sendto(msg("/1/xy1", 0.25, 0.5), ("127.0.0.1", lst.port))
    s.sendto(msg("/accxyz", 0.0, 0.0, 1.0), ("127.0.0.1", lst.port))
    events = drain_n(lst, 2)
    sid = sender_id(f"127.0.0.1:{s.getsockname()[1]}")
    assert [(e.addr, e.args) for e in events] == [(f"/crowd/{sid}/touch", (0.25, 0.5, 1.0)),
                                                  (f"/crowd/{sid}/motion", (0.0,))]


BAD_PACKETS = [
    b"",
    b"\xff" * 13,
    b"/crowd/a/emotion\x00\x00\x00\x00,ff\x00\x00\x00\x00",     # arguments cut off
    b"/\xff\xfe\x00,f\x00\x00\x00\x00\x00\x00",                 # address not UTF-8
    b"/x\x00\x00,i\x00\x00",                                     # an int without its bytes
    b"/x\x00\x00,Q\x00\x00",                                     # an unknown type tag
    b"/x\x00\x00,[[\x00",                                        # unclosed array
    b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x40/x",        # a bundle element past the end
    b"#bundle\x00\x00\x00",                                      # a bundle without its timetag
    b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x08#bundle\x00",  # a bundle inside, cut short
    b"/crowd/a/emotion\x00\x00\x00\x00,ss\x00\xff\xfe\x00\x00\xff\x00\x00\x00",  # a string not UTF-8
    # python-osc 1.10 loops forever on an element of negative size: it must never see one
    b"#bundle\x00" + b"\x00" * 8 + (-4).to_bytes(4, "big", signed=True),
    b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x00",   # an element of no size
    b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x04abcd",  # neither message nor bundle
    b"#bundle\x00" + b"\x00" * 8,                            # an empty bundle: nothing in it
]


def _alive_after(lst: OscListener, s: socket.socket, data: bytes) -> int:
    """Send junk then a good message; return how many messages the junk counted as."""
    before = lst.received
    s.sendto(data, ("127.0.0.1", lst.port))
    s.sendto(msg("/crowd/sentinel/motion", 0.5), ("127.0.0.1", lst.port))
    got: list[InputEvent] = []
    assert wait_for(lambda: (got.extend(lst.drain()), any(e.addr == "/crowd/sentinel/motion" for e in got))[1])
    return lst.received - before - 1


@pytest.mark.parametrize("data", BAD_PACKETS)
def test_malformed_packets_are_counted_and_the_listener_carries_on(make_listener, sender, data):
    lst = make_listener()
    assert _alive_after(lst, sender(), data) == 1
    assert lst.rejected == 1
    assert lst.rejected_by_kind["malformed"] + lst.rejected_by_kind["arg-type"] == 1
    assert lst.running


def test_oversized_packets_are_counted(make_listener, sender):
    lst = make_listener(max_packet_bytes=512)
    data = msg("/crowd/a/vote", "x" * 600)
    assert _alive_after(lst, sender(), data) == 1
    assert lst.rejected_by_kind["oversized"] == 1


@pytest.fixture(scope="module")
def shared_listener():
    lst = OscListener(OscSettings(host="127.0.0.1", port=0, rate_per_sender=1e6, burst_per_sender=1e6),
                      CONFIGS).start()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield lst, s
    s.close()
    lst.stop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200),
                      st.builds(lambda a, b: b"/" + a + b, st.binary(max_size=40), st.binary(max_size=60)),
                      st.builds(lambda a: b"#bundle\x00" + a, st.binary(max_size=120))))
@example(data=b"\x00")
def test_random_packets_never_stop_the_listener(shared_listener, data):
    lst, s = shared_listener
    rejected_before = lst.rejected
    counted = _alive_after(lst, s, data)
    assert counted >= 1                          # every datagram is counted at least once
    lst.drain()
    assert lst.rejected - rejected_before <= counted
    assert sum(lst.rejected_by_kind.values()) == lst.rejected
    assert set(lst.rejected_by_kind) == set(REJECT_KINDS)
    assert lst.running and lst.error is None


def test_a_flood_from_one_sender_does_not_starve_another(make_listener, sender):
    lst = make_listener(rate_per_sender=400.0, burst_per_sender=800.0)
    flooder, quiet = sender(), sender()
    flood = [msg(f"/crowd/flood/touch", (i % 100) / 100.0, 0.5) for i in range(100)]
    stop = threading.Event()
    flood_sent = [0]

    def run_flood():
        # about 20,000 messages a second, as the exhibit's target load from one phone
        t0 = time.perf_counter()
        while not stop.is_set():
            for d in flood:
                flooder.sendto(d, ("127.0.0.1", lst.port))
            flood_sent[0] += len(flood)
            ahead = t0 + flood_sent[0] / 20000.0 - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)

    th = threading.Thread(target=run_flood)
    th.start()
    try:
        time.sleep(0.2)
        for i in range(100):
            quiet.sendto(msg("/crowd/quiet/motion", i / 100.0), ("127.0.0.1", lst.port))
            time.sleep(0.005)
    finally:
        stop.set()
        th.join()
    quiet_src = f"127.0.0.1:{quiet.getsockname()[1]}"
    got: list[InputEvent] = []
    wait_for(lambda: (got.extend(lst.drain()), lst.received >= flood_sent[0] + 100)[1], 5.0)
    got.extend(lst.drain())
    from_quiet = [e for e in got if e.src == quiet_src]
    from_flood = [e for e in got if e.src != quiet_src]
    assert len(from_quiet) == 100                    # every message of the quiet phone
    assert [e.args[0] for e in from_quiet] == pytest.approx([i / 100.0 for i in range(100)], rel=1e-6)
    assert flood_sent[0] > 5000
    # the flooder gets its burst plus its rate, and no more
    assert len(from_flood) <= 800 + 400.0 * 2.0
    assert lst.rejected_by_kind["rate-limited"] >= flood_sent[0] - len(from_flood) - (lst.kernel_drops() or 0)


def test_operator_messages_from_a_host_not_allowed_are_rejected(make_listener, sender, require):
    try:
        other = sender("127.0.0.2")
    except OSError:
        other = None
    require(other is not None, "a second loopback address 127.0.0.2 (Linux has all of 127/8)")
    lst = make_listener(operator_hosts=("127.0.0.1",))
    local = sender("127.0.0.1")
    other.sendto(msg("/scene", "night"), ("127.0.0.1", lst.port))
    other.sendto(msg("/crowd/x/motion", 0.5), ("127.0.0.1", lst.port))   # the audience is open
    local.sendto(msg("/scene", "calm"), ("127.0.0.1", lst.port))
    events = drain_n(lst, 2)
    assert wait_for(lambda: lst.received == 3)
    assert [(e.addr, e.args, e.src.split(":")[0]) for e in events] == [
        ("/crowd/x/motion", (0.5,), "127.0.0.2"), ("/scene", ("calm",), "127.0.0.1")]
    assert lst.rejected == 1 and lst.rejected_by_kind["operator-denied"] == 1


def test_queue_is_bounded_and_overflow_is_counted(make_listener, sender):
    lst = make_listener(queue_max=100, rate_per_sender=1e6, burst_per_sender=1e6)
    s = sender()
    for i in range(250):
        s.sendto(msg("/crowd/q/motion", 0.5), ("127.0.0.1", lst.port))
    assert wait_for(lambda: lst.received == 250)
    assert lst.pending == 100
    assert lst.rejected_by_kind["queue-full"] == 150
    assert len(lst.drain()) == 100 and lst.drain() == []


def test_drain_never_blocks_and_stop_is_prompt(make_listener):
    lst = make_listener()
    t0 = time.perf_counter()
    for _ in range(1000):
        assert lst.drain() == []
    assert time.perf_counter() - t0 < 0.5
    t0 = time.perf_counter()
    lst.stop()
    assert time.perf_counter() - t0 < 0.5
    assert not lst.running


def test_a_busy_port_is_one_clear_error_naming_the_port(make_listener):
    lst = make_listener()
    with pytest.raises(OSError) as err:
        OscListener(OscSettings(host="127.0.0.1", port=lst.port), CONFIGS).start()
    assert isinstance(err.value, OscBindError)
    text = str(err.value)
    assert str(lst.port) in text and "--osc-port" in text and "\n" not in text


def test_a_host_that_is_not_ours_is_one_clear_error():
    with pytest.raises(OscBindError, match="osc.host"):
        OscListener(OscSettings(host="192.0.2.1", port=0), CONFIGS).start()


def test_receive_buffer_and_kernel_counters(make_listener):
    lst = make_listener()
    assert lst.rcvbuf_granted >= 64 * 1024
    if sys.platform.startswith("linux"):
        assert lst.kernel_drops() == 0


def test_the_default_listener_hears_both_loopbacks(make_listener, require):
    """`oscsend localhost ...` may leave over ::1 (stock /etc/hosts names both loopbacks): the
    default listener hears IPv4 and IPv6 alike, and an IPv4 operator stays 127.0.0.1."""
    require(socket.has_ipv6, "IPv6 loopback")
    lst = make_listener(host=OscSettings().host)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as v6:
        v4.sendto(msg("/crowd/four/motion", 0.5), ("127.0.0.1", lst.port))
        v6.sendto(msg("/crowd/six/motion", 0.5), ("::1", lst.port))
        v4.sendto(msg("/blackout", 1), ("127.0.0.1", lst.port))
        assert wait_for(lambda: lst.received == 3)
        events = lst.drain()
        assert lst.rejected == 0
        srcs = {e.addr: e.src for e in events}
        assert srcs["/crowd/four/motion"] == f"127.0.0.1:{v4.getsockname()[1]}"
        assert srcs["/crowd/six/motion"] == f"[::1]:{v6.getsockname()[1]}"
        assert "/blackout" in srcs


def test_no_ipv6_falls_back_to_ipv4(make_listener, monkeypatch, sender):
    import errno
    real = OscListener._bind

    def no_v6(self, host, port):
        if ":" in host:
            raise OscBindError("cannot open an OSC socket: Address family not supported", "no IPv6",
                               errno.EAFNOSUPPORT)
        return real(self, host, port)
    monkeypatch.setattr(OscListener, "_bind", no_v6)
    lst = make_listener(host="::")
    sender().sendto(msg("/crowd/four/motion", 0.5), ("127.0.0.1", lst.port))
    assert wait_for(lambda: lst.received == 1)
    with pytest.raises(OscBindError):       # an explicit IPv6 address does not fall back
        OscListener(OscSettings(host="::1", port=0), CONFIGS).start()


def test_a_refused_message_is_logged_with_its_arguments(make_listener, sender, caplog):
    """The operator sees what was refused, not only where it was sent."""
    import logging
    lst = make_listener()
    with caplog.at_level(logging.WARNING, logger="installation.osc.listener"):
        sender().sendto(msg("/record/start", "../../x"), ("127.0.0.1", lst.port))
        assert wait_for(lambda: lst.rejected == 1)
    line = [r.getMessage() for r in caplog.records if "bad-name" in r.getMessage()][0]
    assert "'/record/start' ['../../x']" in line
