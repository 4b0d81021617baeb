"""Parsing and validation of user options against the admin's limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchhub.jobs import BatchhubError, ConfigError, ResourceRequest
from batchhub.options import OptionsError, describe_request, options_from_form, parse_options
from batchhub.resources import NAME_PATTERN, ResourceForm
from batchhub.units import format_memory, format_runtime, parse_memory, parse_runtime

GPU_PROFILE = {
    "name": "gpu",
    "display_name": "GPU",
    "cores": 4,
    "memory": "16G",
    "gpus": 1,
    "runtime": "4h",
    "queue": "gpu",
}
SMALL_PROFILE = {"name": "small", "display_name": "Small", "cores": 1, "memory": "2G", "runtime": "1h"}


def site(**overrides) -> ResourceForm:
    settings = dict(
        fields=["queue", "cores", "memory", "gpus", "runtime"],
        gpus_max=1,
        queue_choices=["short", "gpu"],
        queue_limits={"gpu": {"gpus_max": 4, "cores_max": 32, "runtime_max": "2d"}},
    )
    settings.update(overrides)
    return ResourceForm(**settings)


# --- units ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("4G", 4096),
        ("4GB", 4096),
        ("4gib", 4096),
        ("512M", 512),
        ("512MB", 512),
        ("1.5G", 1536),
        ("1T", 1048576),
        ("4", 4096),
        (" 2g ", 2048),
        (4, 4096),
        (0.5, 512),
    ],
)
def test_memory_units(text, mb):
    assert parse_memory(text) == mb


@pytest.mark.parametrize(
    "text", ["", "G", "4X", "4 G B", "-1G", "0", "0G", "4K", "4B", "1e3G", "4G;", "4G\nX", "Infinity"]
)
def test_memory_rejects(text):
    with pytest.raises(ValueError):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1:30:00", 5400),
        ("1:30", 5400),
        ("0:00:45", 45),
        ("1-00:00:00", 86400),
        ("1-12", 129600),
        ("2-03:04", 2 * 86400 + 3 * 3600 + 240),
        ("90m", 5400),
        ("90min", 5400),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1d", 86400),
        ("45s", 45),
        ("2", 7200),
        ("1.5", 5400),
        (3, 10800),
        (0.25, 900),
    ],
)
def test_runtime_formats(text, seconds):
    assert parse_runtime(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "h", "1:60", "1:30:60", "0", "0:00", "-1h", "2 hours", "1:3", "1h;ls", "1w"]
)
def test_runtime_rejects(text):
    with pytest.raises(ValueError):
        parse_runtime(text)


@given(st.integers(min_value=1, max_value=10**7))
def test_memory_format_round_trips(mb):
    assert parse_memory(format_memory(mb)) == mb


@given(st.integers(min_value=1, max_value=999 * 86400))
def test_runtime_format_round_trips(seconds):
    assert parse_runtime(format_runtime(seconds)) == seconds


# --- names ---------------------------------------------------------------------
@given(st.text(max_size=80))
def test_free_queue_names_reach_the_request_only_when_safe(name):
    form = site(queue_choices=[])
    try:
        request = parse_options(form, {"queue": name})
    except OptionsError as exc:
        assert exc.field == "queue"
        return
    # accepted: a plain name that cannot break a directive or look like an option
    assert request.queue == name.strip() or name.strip() == ""
    if request.queue:
        assert NAME_PATTERN.fullmatch(request.queue)
        assert not request.queue.startswith("-")
        assert not set(request.queue) & set(" \t\n\r;&|$`'\"\\<>(){}*?#~")


@pytest.mark.parametrize("name", ["-V", "a b", "q;rm -rf /", "q\nx", "$(id)", "q`id`", "x" * 65, "q'", "é"])
def test_unsafe_project_names_refused(name):
    with pytest.raises(OptionsError) as info:
        parse_options(site(fields=["project"]), {"project": name})
    assert info.value.field == "project"


# --- the request ---------------------------------------------------------------
def test_empty_options_give_the_defaults():
    assert parse_options(site(), {}) == ResourceRequest(
        cores=1, memory_mb=2048, gpus=0, runtime_s=3600, queue="short"
    )


def test_form_data_lists_of_strings():
    form = {"queue": ["gpu"], "cores": ["8"], "memory": ["32G"], "gpus": ["2"], "runtime": ["1-00:00:00"]}
    assert parse_options(site(), form) == ResourceRequest(
        cores=8, memory_mb=32768, gpus=2, runtime_s=86400, queue="gpu"
    )


def test_rest_scalars():
    request = parse_options(site(), {"cores": 2, "memory": "1G", "gpus": 1})
    assert (request.cores, request.memory_mb, request.gpus) == (2, 1024, 1)


def test_empty_strings_mean_default():
    assert parse_options(site(), {"cores": [""], "memory": ""}).cores == 1


def test_per_queue_limits():
    with pytest.raises(OptionsError, match=r"gpus: '3' is not allowed; choose 0\u20131 GPU"):
        parse_options(site(), {"queue": "short", "gpus": "3"})
    assert parse_options(site(), {"queue": "gpu", "gpus": "3"}).gpus == 3
    assert parse_options(site(), {"queue": "gpu", "cores": 32}).cores == 32


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"cores": "64"}, "cores", "1\u201316 cores"),
        ({"cores": "0"}, "cores", "1\u201316 cores"),
        ({"cores": "2.5"}, "cores", "whole number"),
        ({"cores": 2.5}, "cores", "whole number"),
        ({"cores": True}, "cores", "single number"),
        ({"memory": "128G"}, "memory", "256M\u201364G"),
        ({"memory": "4X"}, "memory", "a size such as 4G"),
        ({"memory": "4G; rm -rf ~"}, "memory", "a size"),
        ({"runtime": "13h"}, "runtime", "5m\u201312h"),
        ({"runtime": "1m"}, "runtime", "5m\u201312h"),
        ({"queue": "long"}, "queue", "short, gpu"),
        ({"queue": "gpu\n#$ -u root"}, "queue", "control characters"),
        ({"cores": ["1", "2"]}, "cores", "one value"),
        ({"cores": {"a": 1}}, "cores", "single number"),
        ({"project": "x"}, "project", "cannot be chosen"),
        ({"color": "red"}, "options", "unknown option 'color'"),
    ],
)
def test_refusals_name_field_value_and_range(raw, field, words):
    with pytest.raises(OptionsError) as info:
        parse_options(site(), raw)
    assert info.value.field == field
    assert words in str(info.value)
    assert isinstance(info.value, BatchhubError)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"cores": "\uff14"}, "cores"),  # fullwidth 4
        ({"cores": "\u0664"}, "cores"),  # Arabic-Indic 4
        ({"memory": "\uff14G"}, "memory"),
        ({"runtime": "\u0662h"}, "runtime"),
        ({"runtime": "\uff11:\uff13\uff10"}, "runtime"),
    ],
)
def test_only_ascii_digits_are_numbers(raw, field):
    """The form's own script (its core-hours line) reads only 0-9: so does
    the server, rather than start a job the page had no figure for."""
    with pytest.raises(OptionsError) as info:
        parse_options(site(), raw)
    assert info.value.field == field


@pytest.mark.parametrize("value", ["4G\n", "4G\r\nX", "\t4G", "4G\x00"])
def test_control_characters_refused_and_shown_visibly(value):
    with pytest.raises(OptionsError, match="control characters") as info:
        parse_options(site(), {"memory": value})
    assert not set(str(info.value)) & set("\r\n\t\x00")


def test_disabled_field_keeps_its_default():
    form = site(fields=["cores"], memory_default="", runtime_default="")
    request = parse_options(form, {"cores": 4})
    assert request.memory_mb is None and request.runtime_s is None and request.queue == "short"
    with pytest.raises(OptionsError, match="memory cannot be chosen"):
        parse_options(form, {"memory": "4G"})


def test_options_mapping_required():
    with pytest.raises(OptionsError):
        parse_options(site(), ["cores", "4"])  # type: ignore[arg-type]


def test_xsrf_key_ignored():
    assert parse_options(site(), {"_xsrf": ["abc"], "cores": ["2"]}).cores == 2


# --- profiles --------------------------------------------------------------------
def profiled(**overrides) -> ResourceForm:
    return site(profiles=[SMALL_PROFILE, GPU_PROFILE], **overrides)


def test_first_profile_is_the_default():
    assert parse_options(profiled(), {}) == ResourceRequest(
        cores=1, memory_mb=2048, runtime_s=3600, queue="short"
    )


def test_profile_sets_fields_even_those_not_shown():
    request = parse_options(profiled(fields=["cores"]), {"profile": ["gpu"]})
    assert request == ResourceRequest(cores=4, memory_mb=16384, gpus=1, runtime_s=14400, queue="gpu")


def test_profile_with_fields_is_refused():
    with pytest.raises(OptionsError, match="choose 'advanced'"):
        parse_options(profiled(), {"profile": "small", "cores": "8"})


def test_advanced_uses_fields():
    assert parse_options(profiled(), {"profile": "advanced", "cores": "8"}).cores == 8


def test_fields_without_profile_mean_advanced():
    assert parse_options(profiled(), {"cores": 3}).cores == 3


def test_advanced_can_be_switched_off():
    form = profiled(allow_advanced=False)
    for raw in ({"profile": "advanced"}, {"cores": 3}):
        with pytest.raises(OptionsError):
            parse_options(form, raw)
    assert parse_options(form, {"profile": "gpu"}).gpus == 1


def test_unknown_profile_lists_choices():
    with pytest.raises(OptionsError, match="small, gpu, advanced"):
        parse_options(profiled(), {"profile": "huge"})


def test_profile_without_profiles_refused():
    with pytest.raises(OptionsError, match="no profiles"):
        parse_options(site(), {"profile": "gpu"})


# --- admin mistakes are ConfigErrors -------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        {"cores_min": 4, "cores_max": 2},
        {"cores_default": 64},
        {"memory_max": "lots"},
        {"queue_limits": {"gpu": {"gpu_max": 4}}},
        {"queue_limits": {"gpu": {"runtime_max": "1m"}}},
        {"profiles": [{"name": "big", "cores": 999}]},
        {"profiles": [{"name": "a b"}]},
        {"profiles": [{"name": "x"}, {"name": "x"}]},
        {"profiles": [{"name": "advanced"}]},
        {"profiles": [{"name": "x", "colour": "red"}]},
        {"queue_limits": {"gpu": {"memory_max": 1e306}}},
        {"queue_limits": {"gpu": {"runtime_max": 10**400}}},
        {"queue_limits": {"gpu": {"memory_default": 10**5000}}},
    ],
)
def test_bad_site_settings_are_config_errors(settings):
    with pytest.raises(ConfigError):
        parse_options(site(**settings), {"queue": "gpu"})


def test_unknown_field_in_settings():
    with pytest.raises(ConfigError):
        ResourceForm(fields=["cores", "colour"])


def test_options_from_form_keeps_plain_scalars():
    assert options_from_form(site(), {"cores": ["2"], "memory": [""], "queue": ["gpu"]}) == {
        "cores": "2",
        "queue": "gpu",
    }
    with pytest.raises(OptionsError):
        options_from_form(site(), {"cores": ["99"]})


def test_describe_request():
    text = describe_request(
        ResourceRequest(cores=2, memory_mb=1024, gpus=1, runtime_s=5400, queue="gpu", project="p1")
    )
    assert text == "2 cores, 1G, 1 GPU, 1h30m on gpu for p1"


# --- numbers too large to mean anything ------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "most"),
    [
        ("memory", 1e306, "64G"),
        ("memory", 10**400, "64G"),
        ("memory", 1.7e308, "64G"),
        ("memory", "999999999T", "64G"),
        ("runtime", 1e306, "12h"),
        ("runtime", 10**400, "12h"),
        ("runtime", "999-9999:59:59", "12h"),
        ("cores", 1e306, "16 cores"),
        ("cores", 10**400, "16 cores"),
        pytest.param("cores", 10**5000, "16 cores", id="cores-10**5000"),
        ("cores", "12345678", "16 cores"),
        ("gpus", 1e306, "1 GPU"),
        ("gpus", 10**400, "1 GPU"),
    ],
    ids=lambda v: f"int-of-{v.bit_length()}-bits" if isinstance(v, int) else None,
)
def test_a_huge_number_is_refused_with_the_most_allowed(field, value, most):
    with pytest.raises(OptionsError) as info:
        parse_options(site(), {field: value})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert f"is too large; the most is {most}" in str(info.value)
    assert len(str(info.value)) < 200


numbers = st.one_of(
    st.integers(),
    st.floats(),
    st.builds(lambda exponent, sign: sign * 10**exponent, st.integers(0, 6000), st.sampled_from([1, -1])),
    st.from_regex(r"[0-9]{1,30}(\.[0-9]{1,8})?[MGTmgt]?", fullmatch=True),
)


@given(st.sampled_from(["cores", "memory", "gpus", "runtime"]), numbers)
def test_any_number_is_taken_or_refused_by_name(field, value):
    try:
        request = parse_options(site(), {"queue": "gpu", field: value})
    except OptionsError as exc:
        assert exc.field == field
        assert str(exc).startswith(f"{field}: ")
        assert len(str(exc)) < 300
    else:
        assert 1 <= request.cores <= 32 and 0 <= request.gpus <= 4
