"""Validation of single OSC messages against the contract, without a socket."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from installation.config import ConfigError, load_config
from installation.events import InputEvent
from installation.osc.aliases import AliasMap
from installation.osc.settings import OscSettings
from installation.osc.validate import REJECT_KINDS, ID_RE, Validator, sender_id

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LOCAL = "127.0.0.1:50000"
REMOTE = "192.168.1.20:53001"


@pytest.fixture(scope="module")
def v() -> Validator:
    return Validator(OscSettings(), str(CONFIGS))


# address, args as sent, src, expected (types, args) -------------------------------------
ACCEPTED = [
    ("/crowd/a/emotion", [0.5, 0.25], REMOTE, ("ff", (0.5, 0.25))),
    ("/crowd/A-b_9/emotion", [-1, 1], REMOTE, ("ff", (-1.0, 1.0))),        # ints for floats
    ("/crowd/a/touch", [0.1, 0.9], REMOTE, ("fff", (0.1, 0.9, 1.0))),      # pressure filled in
    ("/crowd/a/touch", [0.1, 0.9, 0.3], REMOTE, ("fff", (0.1, 0.9, 0.3))),
    ("/crowd/a/motion", [0.7], REMOTE, ("f", (0.7,))),
    ("/crowd/a/leave", [], REMOTE, ("", ())),
    ("/crowd/a/vote", ["calm-sanctuary"], REMOTE, ("s", ("calm-sanctuary",))),
    ("/sensor/mic1/level", [0.4], REMOTE, ("f", (0.4,))),
    ("/scene", ["night"], LOCAL, ("s", ("night",))),
    ("/scene", ["night", 5], LOCAL, ("sf", ("night", 5.0))),
    ("/param/flow_strength", [0.8], LOCAL, ("f", (0.8,))),
    ("/param/sim.friction", [-3], LOCAL, ("f", (-3.0,))),
    ("/pulse", [0.6], LOCAL, ("f", (0.6,))),
    ("/pulse", [], LOCAL, ("f", (1.0,))),
    ("/master/brightness", [0.5], LOCAL, ("f", (0.5,))),
    ("/master/volume", [1], LOCAL, ("f", (1.0,))),
    ("/blackout", [1], LOCAL, ("i", (1,))),
    ("/blackout", [0.0], LOCAL, ("i", (0,))),           # a TouchOSC toggle sends floats
    ("/blackout", [True], LOCAL, ("i", (1,))),          # OSC true
    ("/record/start", [], LOCAL, ("", ())),
    ("/record/start", ["night-2024_05.jsonl"], LOCAL, ("s", ("night-2024_05.jsonl",))),
    ("/record/stop", [], LOCAL, ("", ())),
]


@pytest.mark.parametrize("address,args,src,expected", ACCEPTED)
def test_contract_addresses_are_accepted_in_canonical_form(v, address, args, src, expected):
    ev = v.check(address, args, src, 1.5)
    assert isinstance(ev, InputEvent), ev
    assert (ev.addr, ev.types, ev.args, ev.src, ev.t) == (address, *expected, src, 1.5)
    assert all(type(a) is float for a, t in zip(ev.args, ev.types) if t == "f")


CLAMPED = [
    ("/crowd/a/emotion", [-3.0, 7], (-1.0, 1.0)),
    ("/crowd/a/touch", [1.5, -0.5, 2.0], (1.0, 0.0, 1.0)),
    ("/crowd/a/motion", [-0.1], (0.0,)),
    ("/sensor/s/level", [12], (1.0,)),
    ("/master/volume", [1.0001], (1.0,)),
    ("/pulse", [-2], (0.0,)),
    ("/scene", ["x", -1], ("x", 0.0)),
]


@pytest.mark.parametrize("address,args,expected", CLAMPED)
def test_out_of_range_numbers_are_clamped_not_rejected(v, address, args, expected):
    ev = v.check(address, args, LOCAL, 0.0)
    assert isinstance(ev, InputEvent)
    assert ev.args == expected


REJECTED = [
    ("/crowd/a/emotion", [math.nan, 0.5], "not-finite"),
    ("/crowd/a/emotion", [0.5, math.inf], "not-finite"),
    ("/crowd/a/motion", [-math.inf], "not-finite"),
    ("/param/x", [math.nan], "not-finite"),
    ("/crowd/a/emotion", [0.5], "arg-count"),
    ("/crowd/a/emotion", [0.5, 0.5, 0.5], "arg-count"),
    ("/crowd/a/touch", [0.1, 0.2, 0.3, 0.4], "arg-count"),
    ("/crowd/a/leave", [1], "arg-count"),
    ("/record/stop", ["x"], "arg-count"),
    ("/crowd/a/emotion", ["happy", 0.5], "arg-type"),
    ("/crowd/a/motion", [True], "arg-type"),                 # true is not a number
    ("/crowd/a/motion", [b"\x00\x01"], "arg-type"),          # a blob
    ("/crowd/a/motion", [[0.5]], "arg-type"),                # an array
    ("/crowd/a/motion", [None], "arg-type"),                 # nil
    ("/scene", [3], "arg-type"),
    ("/crowd/a/vote", [5], "arg-type"),
    ("/crowd/" + "x" * 33 + "/emotion", [0.1, 0.1], "bad-id"),
    ("/crowd//emotion", [0.1, 0.1], "bad-id"),
    ("/crowd/a b/emotion", [0.1, 0.1], "bad-id"),
    ("/crowd/a.b/motion", [0.1], "bad-id"),
    ("/crowd/*/motion", [0.1], "bad-id"),                    # no pattern fan-out to everyone
    ("/sensor/ü/level", [0.1], "bad-id"),
    ("/crowd/a/dance", [0.1], "unknown-address"),
    ("/crowd/a/emotion/extra", [0.1, 0.1], "unknown-address"),
    ("/nothing", [], "unknown-address"),
    ("", [], "unknown-address"),
    ("/scene", ["../calm"], "bad-name"),
    ("/scene", [""], "bad-name"),
    ("/crowd/a/vote", ["calm sanctuary"], "bad-name"),
    ("/record/start", ["../../etc/passwd"], "bad-name"),
    ("/record/start", ["/tmp/x.jsonl"], "bad-name"),
    ("/record/start", [".hidden"], "bad-name"),
    ("/record/start", ["a\\b"], "bad-name"),
    ("/param/" + "p" * 65, [1.0], "bad-name"),
]


@pytest.mark.parametrize("address,args,kind", REJECTED)
def test_bad_messages_are_rejected_with_their_kind(v, address, args, kind):
    assert v.check(address, args, LOCAL, 0.0) == kind
    assert kind in REJECT_KINDS


@pytest.mark.parametrize("address,args", [("/scene", ["night"]), ("/param/x", [1.0]), ("/pulse", [1.0]),
                                          ("/master/volume", [0.5]), ("/master/brightness", [0.5]),
                                          ("/blackout", [1]), ("/record/start", []), ("/record/stop", [])])
def test_operator_addresses_only_from_allowed_hosts(v, address, args):
    assert isinstance(v.check(address, args, "127.0.0.1:4000", 0.0), InputEvent)
    assert isinstance(v.check(address, args, "[::1]:4000", 0.0), InputEvent)
    assert isinstance(v.check(address, args, "::ffff:127.0.0.1:4000", 0.0), InputEvent)
    assert v.check(address, args, "127.0.0.2:4000", 0.0) == "operator-denied"
    assert v.check(address, args, REMOTE, 0.0) == "operator-denied"
    assert v.check(address, args, "not-an-ip:1", 0.0) == "operator-denied"
    # replay of a log the operator chose skips the gate
    assert isinstance(v.check(address, args, REMOTE, 0.0, trusted=True), InputEvent)


def test_operator_networks_and_custom_gate():
    s = OscSettings(operator_hosts=("10.0.0.0/8", "192.168.1.7"))
    v = Validator(s, str(CONFIGS))
    assert isinstance(v.check("/pulse", [1.0], "10.20.30.40:1", 0.0), InputEvent)
    assert isinstance(v.check("/pulse", [1.0], "192.168.1.7:1", 0.0), InputEvent)
    assert v.check("/pulse", [1.0], "192.168.1.8:1", 0.0) == "operator-denied"
    assert v.check("/pulse", [1.0], "127.0.0.1:1", 0.0) == "operator-denied"
    everyone = Validator(s, str(CONFIGS), operator_ok=lambda src: True)
    assert isinstance(everyone.check("/pulse", [1.0], "8.8.8.8:1", 0.0), InputEvent)


def test_bad_operator_hosts_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match="operator_hosts.*'my-laptop'"):
        load_config(sets=['osc.operator_hosts=["my-laptop"]'], env={})
    cfg = load_config(sets=['osc.operator_hosts=["localhost", "fd00::/8"]'], env={})
    assert cfg.osc.operator_hosts == ("localhost", "fd00::/8")


# ---- sender ids and aliases ----------------------------------------------------------------
@pytest.mark.parametrize("src,expected", [("192.168.1.20:53001", "192-168-1-20_53001"),
                                          ("[::1]:9000", "--1_9000"), ("127.0.0.1:7", "127-0-0-1_7")])
def test_sender_id_is_readable_where_it_fits(src, expected):
    assert sender_id(src) == expected


def test_sender_id_of_a_long_ipv6_is_a_stable_valid_hash():
    src = "[2001:db8:85a3:1234:5678:8a2e:370:7334]:60000"
    a, b = sender_id(src), sender_id(src)
    assert a == b and ID_RE.match(a) and a.startswith("h-")
    assert sender_id(src.replace("60000", "60001")) != a


def test_shipped_aliases_map_onto_the_contract(v):
    sid = sender_id(REMOTE)
    ev = v.check("/1/xy1", [0.25, 0.75], REMOTE, 2.0)
    assert (ev.addr, ev.types, ev.args, ev.src) == (f"/crowd/{sid}/touch", "fff", (0.25, 0.75, 1.0), REMOTE)
    assert v.check("/3/xy", [1, 0], REMOTE, 0.0).args == (1.0, 0.0, 1.0)
    assert v.check("/1/fader1", [0.4], REMOTE, 0.0).addr == f"/crowd/{sid}/motion"
    # TouchOSC /accxyz in g with gravity: |(0.6, 0.8, 1.0)| = sqrt(2); energy = 1.5 * (sqrt(2) - 1)
    ev = v.check("/accxyz", [0.6, 0.8, 1.0], REMOTE, 0.0)
    assert ev.addr == f"/crowd/{sid}/motion"
    assert ev.args[0] == pytest.approx(1.5 * (math.sqrt(2.0) - 1.0))
    # at rest, gravity alone: no motion
    assert v.check("/accxyz", [0.0, 0.0, -1.0], REMOTE, 0.0).args == (0.0,)
    # Sensors2OSC in m/s²: resting phone -> 0, |a| = 13.81 -> 0.15 * 4 = 0.6
    assert v.check("/acceleration", [0.0, 9.81, 0.0], REMOTE, 0.0).args[0] == pytest.approx(0.0)
    assert v.check("/acceleration", [0.0, 0.0, 13.81], REMOTE, 0.0).args[0] == pytest.approx(0.6)
    assert v.check("/light", [250.0], REMOTE, 0.0).addr == f"/sensor/{sid}/level"
    assert v.check("/light", [250.0], REMOTE, 0.0).args == (0.5,)
    # ZIG SIM, with and without the /ZIGSIM prefix: |(0.3, 0.4, 0)| * 1.2 = 0.6
    for addr in ("/1A2B3C4D-0000-1111-2222-333344445555/accel", "/ZIGSIM/1A2B3C4D/accel"):
        ev = v.check(addr, [0.3, 0.4, 0.0], REMOTE, 0.0)
        assert ev.addr == f"/crowd/{sid}/motion" and ev.args[0] == pytest.approx(0.6)


def test_aliased_messages_still_pass_the_contract_checks(v):
    assert v.check("/1/xy1", [math.nan, 0.5], REMOTE, 0.0) == "not-finite"
    assert v.check("/accxyz", [math.inf, 0.0, 0.0], REMOTE, 0.0) == "not-finite"
    assert v.check("/1/xy1", [0.5], REMOTE, 0.0) == "arg-count"
    assert v.check("/1/xy1", ["x", 0.5], REMOTE, 0.0) == "arg-type"
    assert v.check("/1/xy1", [7.0, -2.0], REMOTE, 0.0).args == (1.0, 0.0, 1.0)
    assert v.check("/1/xy2", [0.5, 0.5], REMOTE, 0.0) == "unknown-address"


def test_an_alias_onto_an_operator_address_is_gated(tmp_path):
    f = tmp_path / "push.toml"
    f.write_text('[[alias]]\naddress = "/2/push1"\nto = "/pulse"\nargs = [{ arg = 0 }]\n')
    v = Validator(OscSettings(alias_files=(str(f),)), str(tmp_path))
    assert v.check("/2/push1", [1.0], REMOTE, 0.0) == "operator-denied"
    assert v.check("/2/push1", [1.0], LOCAL, 0.0).addr == "/pulse"


def test_first_alias_in_file_order_wins(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text('[[alias]]\naddress = "/*/x"\nto = "/crowd/{sender}/motion"\nargs = [{ value = 0.25 }]\n'
                 '[[alias]]\naddress = "/a/x"\nto = "/crowd/{sender}/motion"\nargs = [{ value = 0.75 }]\n'
                 '[[alias]]\naddress = "/b/x"\nto = "/crowd/{sender}/motion"\nargs = [{ arg = 0, scale = 2, offset = 0.1 }]\n')
    m = AliasMap.load([str(f)], str(tmp_path))
    v = Validator(OscSettings(), aliases=m)
    assert v.check("/a/x", [], REMOTE, 0.0).args == (0.25,)
    assert v.check("/b/x", [0.2], REMOTE, 0.0).args == (0.25,)   # the wildcard came first
    assert v.check("/a/b/x", [], REMOTE, 0.0) == "unknown-address"  # * is one segment


@pytest.mark.parametrize("text,message", [
    ('[[alias]]\naddress = "/x"\nto = "/crowd/{sender}/fly"\nargs = [{ arg = 0 }]\n', "not an address of the contract"),
    ('[[alias]]\naddress = "/x"\nto = "/crowd/{sender}/emotion"\nargs = [{ arg = 0 }]\n', "takes 2 arguments"),
    ('[[alias]]\naddress = "/x"\nto = "/crowd/{sender}/motion"\nargs = [{ arg = 0, gain = 2 }]\n', "unknown key 'gain'"),
    ('[[alias]]\naddress = "/x"\nto = "/crowd/{sender}/motion"\nargs = [{ arg = -1 }]\n', "argument index"),
    ('[[alias]]\naddress = "/x"\nto = "/crowd/{sender}/motion"\nargs = [{ arg = 0, value = 1 }]\n', "exactly one"),
    ('[[alias]]\naddress = "x"\nto = "/crowd/{sender}/motion"\nargs = [{ arg = 0 }]\n', "expected an OSC address"),
    ('[[alias]]\naddress = "/x"\nto = "/crowd/{who}/motion"\nargs = [{ arg = 0 }]\n', "not an address of the contract"),
    ('[[alias]]\naddress = "/x"\nto = "/crowd/{sender}/motion"\nargs = [{ arg = 0, scale = "big" }]\n', "finite number"),
    ('aliases = 3\n', "unknown key 'aliases'"),
    ('[[alias]\n', "not valid TOML"),
])
def test_bad_alias_files_are_config_errors_naming_file_and_alias(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        AliasMap.load([str(f)], str(tmp_path))
    assert message in str(err.value) and "bad.toml" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_alias_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        AliasMap.load(["aliases/nope.toml"], str(tmp_path))


def test_relative_alias_files_fall_back_to_the_shipped_ones(tmp_path):
    # a config file written elsewhere still finds aliases/touchosc.toml
    m = AliasMap.load(["aliases/touchosc.toml"], str(tmp_path))
    assert m.find("/1/xy1") is not None


# ---- nothing a sender can send makes the check raise ---------------------------------------
_arg = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**63, 2**63 - 1),
                 st.text(max_size=40), st.booleans(), st.none(), st.binary(max_size=8),
                 st.lists(st.floats(), max_size=2))
_addr = st.one_of(
    st.text(max_size=60),
    st.builds(lambda a, b, c: f"/{a}/{b}/{c}", st.sampled_from(["crowd", "sensor", "param", "1", "ZIGSIM"]),
              st.text(max_size=40), st.sampled_from(["emotion", "touch", "motion", "leave", "vote", "level", "accel", "x"])),
    st.sampled_from(["/scene", "/pulse", "/blackout", "/record/start", "/record/stop", "/master/volume",
                     "/1/xy1", "/accxyz", "/acceleration", "/light", "/param/x"]),
)


@settings(max_examples=400, deadline=None)
@given(address=_addr, args=st.lists(_arg, max_size=5), local=st.booleans())
def test_check_never_raises_and_returns_an_event_or_a_known_kind(v, address, args, local):
    out = v.check(address, args, LOCAL if local else REMOTE, 0.0)
    if isinstance(out, InputEvent):
        assert all(math.isfinite(a) for a in out.args if not isinstance(a, str))
        assert len(out.types) == len(out.args)
    else:
        assert out in REJECT_KINDS


# -- one scene-name rule for every reader of a scene name ------------------------------------

def _name_verdicts(v, name: str) -> dict[str, bool]:
    """Whether each reader of a scene name takes `name` as a well-formed name."""
    from installation.config.loader import build_section
    from installation.config.model import Config, SceneLibrary, read_scene
    from installation.ops.settings import ScheduleSettings
    from installation.ops.votes import VoteBox
    from installation.ops.settings import VoteSettings
    out = {"osc /scene": isinstance(v.check("/scene", [name], LOCAL, 0.0), InputEvent),
           "osc vote": isinstance(v.check("/crowd/a/vote", [name], REMOTE, 0.0), InputEvent)}
    try:
        read_scene(Config(scenes=SceneLibrary({})), name)
    except ConfigError as exc:
        out["scene file"] = "letters, digits" not in str(exc)
    try:
        build_section(ScheduleSettings, {"playlist": [name], "entries": [f"09:00={name}"]}, "c [schedule]")
        out["schedule"] = True
    except ConfigError:
        out["schedule"] = False
    why = VoteBox(VoteSettings(), 60).vote("a", name, 0)
    out["vote"] = why is None
    return out


@pytest.mark.parametrize("name", ["night", "Late_Night-2", "x" * 64, "nuit-été", "late night", "night.v2",
                                  "ñ", "x" * 65, "ａｂｃ", "٣", "", "a/b"])
def test_every_reader_takes_the_same_scene_names(v, name):
    """A scene file the config takes can be switched to by /scene, scheduled and voted for."""
    verdicts = _name_verdicts(v, name)
    assert len(set(verdicts.values())) == 1, (name, verdicts)


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=70).filter(lambda s: s != "playlist"))
def test_every_reader_takes_the_same_scene_names_whatever_the_text(v, name):
    verdicts = _name_verdicts(v, name)
    assert len(set(verdicts.values())) == 1, (name, verdicts)
