"""Every level of the one precedence order of ``settings.Settings``, each beating the next:
command line > ini > models file > case file > model-dependent default > CI environment
variable > built-in default. A real pytest config (pytester), a real case file and real LLM
specs from a real models file."""

from __future__ import annotations

import pytest

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.llm.profiles import resolve_llms
from pytest_autopilot.settings import DEFAULT_LLM_TIMEOUT_S, LOCAL_LLM_TIMEOUT_S, Settings

MODELS = """\
models:
  scripted/standin:
    profiles:
      chat: {strategy: [conversation]}
"""


@pytest.fixture
def setup(toy_project, pytester, monkeypatch):
    """``settings(*args, ini=...)``, the toy case with ``case_fields``, and the LLMs by name."""
    monkeypatch.delenv("CI", raising=False)
    (toy_project / "autopilot-models.yaml").write_text(MODELS)

    def settings(*args: str, ini: str = "") -> Settings:
        pytester.makeini("[pytest]\nautopilot_cases_dir = cases\n" + ini)
        return Settings(pytester.parseconfig(*args))

    def case(repair: str = "", top: str = ""):
        """The toy case's spec with more ``repair:`` fields and top-level lines."""
        path = toy_project / "cases/toy/answer.yaml"
        path.write_text(path.read_text().replace("repair: {max_attempts: 2}", "repair: {max_attempts: 2%s}" % repair) + top)
        return load_case(path, toy_project / "prompts").spec

    (chat,) = resolve_llms(["scripted/standin@chat"], toy_project / "autopilot-models.yaml")
    plain, local = resolve_llms(["scripted/standin", "local/qwen2.5-coder-0.5b"], None)  # no models file
    llms = {"chat": chat, "plain": plain, "local": local}
    return settings, case, llms


def test_command_line_beats_ini_beats_case_beats_default(setup):
    settings, case, _ = setup
    spec = case(", error_chars: 3000")
    assert settings().for_case("error_chars", spec) == 3000  # case > default
    assert settings().for_case("error_chars", None) == 2000  # the default
    assert settings(ini="autopilot_error_chars = 2500\n").for_case("error_chars", spec) == 2500  # ini > case
    assert settings("--autopilot-error-chars", "1500", ini="autopilot_error_chars = 2500\n").for_case(
        "error_chars", spec) == 1500  # command line > ini


def test_models_file_beats_case_and_loses_to_ini(setup):
    settings, case, llms = setup
    spec = case(", strategy: [resample]")
    assert settings().for_case("repair_strategy", spec, llms["chat"]) == ("conversation",)  # profile > case
    assert settings().for_case("repair_strategy", spec, llms["plain"]) == ["resample"]  # no profile: the case
    assert settings().for_case("repair_strategy", None, llms["plain"]) == ["stateless"]  # the default
    ini = "autopilot_repair_strategy = stateless\n"
    assert settings(ini=ini).for_case("repair_strategy", spec, llms["chat"]) == ["stateless"]  # ini > profile
    assert settings("--autopilot-repair-strategy", "resample", ini=ini).for_case(
        "repair_strategy", spec, llms["chat"]) == ["resample"]


def test_case_beats_model_dependent_default_beats_default(setup):
    settings, case, llms = setup
    assert settings().for_case("llm_timeout", case(), llms["local"]) == LOCAL_LLM_TIMEOUT_S
    assert settings().for_case("llm_timeout", None, llms["plain"]) == DEFAULT_LLM_TIMEOUT_S
    assert settings().for_case("llm_timeout", case(top="timeouts: {llm_s: 42}\n"), llms["local"]) == 42  # the case's timeouts.llm_s


def test_ci_environment_beats_default_and_loses_to_ini(setup, monkeypatch):
    settings, _, _ = setup
    assert settings().get("cassette_check") == "warn"
    monkeypatch.setenv("CI", "true")
    assert settings().get("cassette_check") == "error"
    monkeypatch.setenv("CI", "false")  # set, but saying no
    assert settings().get("cassette_check") == "warn"
    monkeypatch.setenv("CI", "1")
    assert settings(ini="autopilot_cassette_check = warn\n").get("cassette_check") == "warn"
    assert settings("--autopilot-cassette-check", "warn").get("cassette_check") == "warn"
