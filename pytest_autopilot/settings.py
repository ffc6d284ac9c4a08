"""Options, ini keys and the one precedence order for settings (``Settings``'s docstring has it).

Each option is declared once in ``OPTIONS`` and turned into both a pytest flag and an ini
key, so the flags, the ini keys and any standalone CLI share one definition.

A project opts in with the ini key ``autopilot_cases_dir`` (``OPT_IN_KEY``); without it the
plugin stays inert. Folder settings are relative to the folder of the ini file that holds them
(``project_dir``). This module is imported at every pytest start, opted in or not, so it imports
nothing heavy (no pydantic, yaml, litellm).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pytest_autopilot.core.records import CODE_CHARS, DEFAULT_STRATEGY

RECORD_MODES = ("none", "once", "new_episodes", "all")
DEFAULT_LLM_TIMEOUT_S = 120.0  # per LLM call
LOCAL_LLM_TIMEOUT_S = 600.0  # per call to a local/ model: its calls queue on one CPU server shared by all workers


@dataclass(frozen=True)
class Option:
    name: str  # attribute name; flag --autopilot-<name with dashes>, ini autopilot_<name>
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    case_field: str | None = None  # dotted path into the case spec when a case may set it
    profile_field: str | None = None  # attribute of the LLM (llm.profiles.LLMSpec) its models-file profile sets
    model_default: Callable[[Any], Any] | None = None  # the default for an LLM (llm.profiles.LLMSpec)
    on_ci: Any = None  # the value when the CI environment variable is set (on_ci())
    multiple: bool = False
    flag_only: bool = False  # e.g. --autopilot-self-test: a mode, not a project setting
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--autopilot-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "autopilot_" + self.name


def _bool(text: str) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "on")


FAIL_ON = ("strict", "errors", "never")  # --autopilot-fail-on; what each exits with: results/gate.py
_PER_CASE, _POOLED = "per-case:", "pooled:"


@dataclass(frozen=True)
class Threshold:
    """``--autopilot-fail-under``: the lowest strict success rate that passes, over every finished
    run (pooled) or in every (case, model, strategy) group (per case)."""

    rate: float
    per_case: bool = False

    def __str__(self) -> str:
        return (_PER_CASE if self.per_case else "") + f"{self.rate:g}"


def parse_rate(text: str) -> float:
    """A rate in [0, 1], written ``0.8`` or ``80%``."""
    raw = str(text).strip()
    try:
        rate = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError("expected a rate such as 0.8 or 80%") from None
    if not 0 <= rate <= 1:
        raise ValueError("expected a rate between 0 and 1 (or 0% and 100%)")
    return rate


def parse_threshold(text: str) -> Threshold:
    """``RATE`` or ``pooled:RATE`` (over every finished run), ``per-case:RATE`` (each group)."""
    raw = str(text).strip()
    per_case = raw.startswith(_PER_CASE)
    try:
        return Threshold(parse_rate(raw.removeprefix(_PER_CASE).removeprefix(_POOLED)), per_case)
    except ValueError as exc:
        raise ValueError(f"{exc}, optionally after pooled: or per-case: (e.g. per-case:0.8)") from None


def _checked(convert: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """``convert`` as an argparse type: its ValueError becomes the one-line message argparse shows."""
    def checked(text: str) -> Any:
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"{exc}, got {text!r}") from None

    checked.__name__ = name
    return checked


def _whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number in [minimum, maximum], checked before anything runs."""
    expected = f"expected a whole number >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")

    def convert(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise ValueError(expected) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(expected)
        return value

    return _checked(convert, "int")


def _positive_seconds(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError("expected a number of seconds > 0") from None
    if not value > 0:
        raise ValueError("expected a number of seconds > 0")
    return value


_seconds = _checked(_positive_seconds, "float")
rate_type = _checked(parse_rate, "rate")  # 0.8 or 80%, for the CLI's --max-drop too


def on_ci() -> bool:
    """Whether the CI environment variable is set (to anything but 0/false/no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


OPTIONS: tuple[Option, ...] = (
    # the defaults quoted in help texts live in llm.profiles (importing it costs pydantic and yaml at
    # every pytest start); tests/e2e/test_optin.py keeps these quotes equal to them
    Option("llm", "litellm model string, optionally MODEL@PROFILE; repeatable "
           "(default: scripted/standin, the offline scripted stand-in)", multiple=True),
    Option("models", "YAML file with per-model parameter profiles, api_base and prices",
           default="autopilot-models.yaml"),
    # the bounds of the numbers are the case file's (cases/spec.py), so a setting valid in one is valid in the other
    Option("runs", "repetitions per (case, model)", type=_whole(1), default=1),
    Option("max_attempts", "repair attempts per step", type=_whole(1, 50), default=5, case_field="repair.max_attempts"),
    Option("error_chars", "max characters of error feedback in a repair prompt", type=_whole(100, 100_000),
           default=2000, case_field="repair.error_chars"),
    Option("code_chars", "max characters of the previous answer quoted in a repair prompt (the rest is cut, "
           "with a marker)", type=_whole(200, 1_000_000), default=CODE_CHARS, case_field="repair.code_chars"),
    Option("run_timeout", "seconds a generated program may run", type=_seconds, default=60.0,
           case_field="timeouts.run_s"),
    Option("llm_timeout", f"seconds per LLM call (default {DEFAULT_LLM_TIMEOUT_S:g}; {LOCAL_LLM_TIMEOUT_S:g} for "
           "local/ models, whose calls queue on one CPU server)", type=_seconds, case_field="timeouts.llm_s",
           model_default=lambda llm: LOCAL_LLM_TIMEOUT_S if llm.is_local else DEFAULT_LLM_TIMEOUT_S),
    Option("human_timeout", "seconds a human/ baseline run waits for each answer file (default 3600)",
           type=_seconds, default=3600.0),
    Option("llm_retries", "retries of transient LLM errors (rate limit, 5xx), not counted as attempts",
           type=_whole(0), default=3),
    Option("extract", "policy when an answer has several code blocks of the language",
           default="first", choices=("first", "last", "largest", "reject")),
    Option("repair_strategy", "how a failed attempt is fed back: stateless (the paper's: task, previous code "
           "and error in one message), conversation (the chat so far), resample (the task again, no feedback); "
           "repeatable: each strategy is its own test id", multiple=True, case_field="repair.strategy",
           profile_field="strategies", default=[DEFAULT_STRATEGY]),
    Option("stop_on_repeat", "end a step after N identical answers (0: off, the paper's behaviour)", type=_whole(0),
           default=0),
    Option("cpu_slots", "CPU-heavy steps (builds, conversions, sandboxed runs, oracle re-runs) at once on this "
           "machine, across xdist workers and sessions; LLM waits take no slot (default: the cores this process may "
           "use)", type=_whole(1)),
    Option("progress", "a live line of the sweep on the terminal (runs done/total, strict successes, ETA, LLM wait "
           "share): auto (on a terminal, not on CI), on, off; never under -q", default="auto",
           choices=("auto", "on", "off")),
    Option("local_port", "port of the plugin's llama.cpp server for local/ models (0: any free port)",
           type=_whole(0, 65535), default=0),
    Option("local_threads", "threads of the local model server (0: the machine's cores)", type=_whole(0), default=0),
    Option("cases_dir", "folder holding case YAML files; setting this ini key opts the project in (without it "
           "the plugin claims no file)", default="cases"),
    Option("prompts_dir", "folder holding prompt templates", default="prompts"),
    Option("cassettes_dir", "folder holding vcrpy cassettes", default="cassettes"),
    Option("hardware_dir", "folder holding the board/target registry (one YAML per board)", default="hardware"),
    Option("reports_dir", "folder receiving reports/<run-id>/", default="reports"),
    Option("run_id", "name of this run's report folder (default: UTC timestamp)"),
    Option("record_mode", "cassette mode: once (replay, record missing cassettes), none (replay only), "
           "new_episodes, all", default="once", choices=RECORD_MODES),
    Option("cassette_check", "a replayed cassette that does not match the sha256 in its folder's MANIFEST.sha256: "
           "error (stops the run) or warn (recorded in the run, printed once); default error when the CI "
           "environment variable is set, else warn", default="warn", on_ci="error", choices=("warn", "error")),
    Option("missing_toolchain", "what a case whose toolchain is not installed does: fail or skip "
           "(with the install command either way)", default="fail", choices=("fail", "skip")),
    Option("fail_on", "what fails the session: strict (a run the strict oracle rejected: exit 1), errors (only "
           "set-up trouble: a run stopped by an error such as a cassette miss, a crashed or incomplete run: exit 6; "
           "model failures are a result), never (exit 0); set-up trouble is exit 6 under strict too",
           default="strict", choices=FAIL_ON),
    Option("fail_under", "with --autopilot-fail-on strict: fail (exit 1) only when the strict success rate is under "
           "RATE (0.8 or 80%), pooled over every finished run, or per-case:RATE for each (case, model, strategy)",
           type=_checked(parse_threshold, "rate")),
    Option("shard", "run only slice I of N of the sweep (I/N, 1-based); shards' results merge with "
           "'pytest-autopilot merge'", flag_only=True),
    Option("resume", "continue the interrupted sweep RUN_ID: runs finished in its journal are not repeated",
           flag_only=True),
    Option("rescore", "judge the archived programs in DIR (one file or one folder per run, or DIR/<case>/; the "
           "paper's valid_<time>_psg_<model>/ folders as they are) with the case's oracles, no LLM", flag_only=True),
    Option("rescore_groups", "how --autopilot-rescore finds each program's model, run and study verdict: a regex "
           "with named groups model, run, verdict (matched on the folder name, else the file stem; default: "
           "the paper's valid|tmp_<time>_<stage>_<model>) or a manifest .csv/.json (file, model, run, verdict)",
           flag_only=True),
    Option("hil", "run firmware cases on an attached board (serial port from the board entry or "
           "AUTOPILOT_HIL_PORT) instead of the simulator", type=_bool, default=False, flag_only=True),
    Option("self_test", "run reference and known-bad solutions through the oracles, no LLM",
           type=_bool, default=False, flag_only=True),
    Option("recorded_only", "keep only the LLM runs whose cassette exists (replay what was recorded, whatever "
           "mix of models, strategies and repetitions that is); the others are deselected", type=_bool,
           default=False, flag_only=True),
)

BY_NAME = {o.name: o for o in OPTIONS}


def flag_kwargs(opt: Option) -> dict[str, Any]:
    """The keyword arguments of ``opt``'s flag, for pytest's ``addoption`` and argparse's
    ``add_argument`` alike (pytest hands them to argparse). Defaults are ``None``: a flag that was
    not given leaves the ini key / case / built-in default to decide."""
    kwargs: dict[str, Any] = {"dest": "autopilot_" + opt.name, "help": opt.help.replace("%", "%%"), "default": None}
    if opt.type is _bool:
        kwargs["action"] = "store_true"
    elif opt.multiple:
        kwargs.update(action="append", metavar=opt.name.upper())
    else:
        kwargs.update(action="store", metavar=opt.name.upper(), type=opt.type)
        if opt.choices:
            kwargs["choices"] = opt.choices
    return kwargs


def add_options(parser) -> None:
    group = parser.getgroup("autopilot", "pytest-autopilot: LLM embedded-ML pipeline evaluation")
    for opt in OPTIONS:
        group.addoption(opt.flag, **flag_kwargs(opt))
        if not opt.flag_only:
            parser.addini(opt.ini, opt.help, type="linelist" if opt.multiple else "string", default=None)
    # --record-mode is the spelling vcrpy users know; pytest-recording may own it already.
    try:
        group.addoption("--record-mode", dest="autopilot_record_mode_alias", choices=RECORD_MODES,
                        default=None, help="alias of --autopilot-record-mode")
    except ValueError:
        pass


OPT_IN_KEY = BY_NAME["cases_dir"].ini
# where each pytest config file keeps its ini keys, for the opt-in hint
_INI_SECTIONS = {"pyproject.toml": "[tool.pytest.ini_options]", "setup.cfg": "[tool:pytest]"}


def opted_in(config) -> bool:
    """Whether the project set ``autopilot_cases_dir`` (in its ini file, or with ``-o``)."""
    return config.getini(OPT_IN_KEY) not in (None, "", [])


def refuse_settings_without_opt_in(config) -> None:
    """In a project that did not opt in, an ``--autopilot-*`` flag or an ``autopilot_*`` ini key
    would silently do nothing: raise a one-line usage error naming the opt-in key instead."""
    given = [opt.flag for opt in OPTIONS if config.getoption("autopilot_" + opt.name) is not None]
    if config.getoption("autopilot_record_mode_alias", None):  # None when pytest-recording owns --record-mode
        given.append("--record-mode")
    given += [f"ini key {opt.ini}" for opt in OPTIONS
              if not opt.flag_only and opt.ini != OPT_IN_KEY and config.getini(opt.ini) not in (None, "", [])]
    if not given:
        return
    import pytest

    inipath = Path(config.inipath) if config.inipath else None
    where = (f"{_INI_SECTIONS.get(inipath.name, '[pytest]')} of {inipath}" if inipath
             else "a pytest.ini ([pytest]) or pyproject.toml ([tool.pytest.ini_options]) beside your cases/")
    raise pytest.UsageError(f"{given[0]} is set, but this project has not opted in to pytest-autopilot: add "
                            f"{OPT_IN_KEY} = cases (the folder of your case files) to {where}, "
                            "or scaffold a project with `pytest-autopilot init`")


def project_dir(config) -> Path:
    """The folder the folder settings are relative to: the ini file's (pytest's rootdir unless
    ``--rootdir`` moves it), so ``pytest .`` in any subfolder finds the same cases. Without an ini
    file (opted in with ``-o autopilot_cases_dir=...``): the folder pytest was started in."""
    return Path(config.inipath).parent if config.inipath else Path(config.invocation_params.dir)


class Settings:
    """The settings of a session, each resolved by the one precedence order, highest first:

    1. the command line, ``--autopilot-<name>``;
    2. the ini key, ``autopilot_<name>`` (pytest.ini, pyproject.toml ``[tool.pytest.ini_options]``,
       tox.ini, setup.cfg);
    3. the models file: the LLM's profile (``Option.profile_field``: the strategies it is swept with);
    4. the case file (``Option.case_field``);
    5. a model-dependent default (``Option.model_default``: longer LLM calls for local/ models);
    6. the CI environment variable (``Option.on_ci``: a cassette check that stops the run);
    7. the built-in default (``Option.default``).

    Levels 3-5 exist only for a run (:meth:`for_case` with its case and LLM); :meth:`get` is a
    session-wide setting. tests/core/test_precedence.py exercises every level.
    """

    def __init__(self, config):
        self._config = config
        self._explicit: dict[str, Any] = {}
        for opt in OPTIONS:
            value = config.getoption("autopilot_" + opt.name)
            if opt.name == "record_mode" and value is None:
                value = _record_mode_alias(config)
            if value is None and not opt.flag_only:
                ini = config.getini(opt.ini)
                value = ini if ini not in (None, "", []) else None
                if value is not None and not opt.multiple:
                    value = _convert(opt, value, str(config.inipath or "-o on the command line"))
            self._explicit[opt.name] = value

    def get(self, name: str) -> Any:
        """The session-wide setting: command line > ini > CI > default."""
        return self.for_case(name, None)

    def for_case(self, name: str, case_spec, llm=None) -> Any:
        """The setting for one run of ``case_spec`` with ``llm``: the first level that has a value."""
        opt = BY_NAME[name]
        levels = (lambda: self._explicit[name],
                  lambda: getattr(llm, opt.profile_field) if llm is not None and opt.profile_field else None,
                  lambda: _field(case_spec, opt.case_field) if case_spec is not None and opt.case_field else None,
                  lambda: opt.model_default(llm) if llm is not None and opt.model_default else None,
                  lambda: opt.on_ci if opt.on_ci is not None and on_ci() else None)
        return next((value for level in levels if _given(value := level())), opt.default)


def _given(value: Any) -> bool:
    """Whether a level sets the setting: an empty list (of strategies) leaves it to the next one."""
    return value is not None and not (isinstance(value, (list, tuple)) and not value)


def _field(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _record_mode_alias(config) -> str | None:
    for dest in ("autopilot_record_mode_alias", "record_mode"):  # ours, or pytest-recording's
        try:
            value = config.getoption(dest)
        except ValueError:
            continue
        if value:
            return value
    return None


def _convert(opt: Option, value: str, where: str) -> Any:
    """An ini value through its option's type, or a one-line usage error naming the key and file."""
    import pytest

    try:
        converted = opt.type(value)
    except argparse.ArgumentTypeError as exc:  # the checked types say what they expected
        raise pytest.UsageError(f"ini key {opt.ini} = {value!r} ({where}): {exc}") from None
    except (TypeError, ValueError):
        raise pytest.UsageError(f"ini key {opt.ini} = {value!r} ({where}): expected {opt.type.__name__}") from None
    if opt.choices and converted not in opt.choices:
        raise pytest.UsageError(f"ini key {opt.ini} = {value!r} ({where}): expected one of {', '.join(opt.choices)}")
    return converted


def add_argparse_options(parser, names) -> None:
    """Add the ``OPTIONS`` named in ``names`` to an argparse parser (or argument group), built by
    :func:`flag_kwargs` like the pytest flags, so a standalone CLI shares their definition.
    Defaults are ``None``: resolve with ini/default afterwards (``BY_NAME[name].default``)."""
    for name in names:
        opt = BY_NAME[name]
        parser.add_argument(opt.flag, **flag_kwargs(opt))


# ---------------------------------------------------------------------------------------------
# outside a pytest session (the CLI): command line > ini key > default, the ini found the way pytest finds it


def pytest_config(cwd: Path) -> tuple[Path, dict[str, Any]]:
    """(rootdir, ini values) as pytest determines them when started in ``cwd`` without arguments.

    This is pytest's own discovery, ``_pytest.config.findpaths.determine_setup`` (pytest has no
    public API for it): per folder from ``cwd`` upwards pytest.toml, .pytest.toml, pytest.ini,
    .pytest.ini, pyproject.toml (``[tool.pytest]`` or ``[tool.pytest.ini_options]``), tox.ini
    (``[pytest]``), setup.cfg (``[tool:pytest]``); the first config file found decides, and without
    one the rootdir is the nearest folder holding setup.py, else ``cwd``. Only the keyword
    arguments the installed pytest accepts are passed (their set changed between pytest 8 and 9).
    """
    import inspect

    import pytest
    from _pytest.config import findpaths

    wanted = {"inifile": None, "args": [], "rootdir_cmd_arg": None, "invocation_dir": cwd, "override_ini": None}
    accepted = inspect.signature(findpaths.determine_setup).parameters
    try:
        found = findpaths.determine_setup(**{k: v for k, v in wanted.items() if k in accepted})
    except (pytest.UsageError, pytest.fail.Exception) as exc:  # an unreadable config file
        raise ValueError(f"pytest configuration: {exc}") from None
    rootdir, _inipath, inicfg = found[:3]
    # pytest 9 wraps each value in a ConfigValue; pytest 8 gives the value itself
    return Path(rootdir), {key: getattr(value, "value", value) for key, value in inicfg.items()}


def folder_setting(args, name: str, cwd: Path | None = None) -> Path:
    """A folder option (``reports_dir``, ``cassettes_dir``): flag, else ini key, else default (see reports_dir)."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    if getattr(args, "autopilot_" + name) is not None:
        return Path(getattr(args, "autopilot_" + name))
    option = BY_NAME[name]
    rootdir, ini = pytest_config(cwd)
    value = ini.get(option.ini)
    return rootdir / (str(value) if value not in (None, "") else option.default)
