"""The parameter models of the built-in oracles, checked at collection (``oracles.BUILTIN_PARAMS``).

Only pydantic here, so checking a case imports no oracle module (no pandas, numpy or TF). The
models check; the oracles still read ``ctx.params`` as the case gives them, with the defaults
below (``tests/cases/test_oracle_params.py`` keeps both equal). Strict: ``"8"`` is not 8, and
``"false"`` is not false.

Params naming a case's asset or work-dir input are checked against the case when collection
passes them as validation context: ``{"assets": [...], "workspace": [...]}``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)


class OracleParams(BaseModel):
    """Base of a parameter model: unknown keys are errors, and so are values of the wrong type."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a regular expression ({exc})") from None
    return value


def _asset(value: str, info: ValidationInfo) -> str:
    assets = (info.context or {}).get("assets")
    if assets is not None and value not in assets:
        raise ValueError(f"{value!r} is not an asset of the case; name one of: {', '.join(sorted(assets)) or 'none'}")
    return value


Regex = Annotated[str, AfterValidator(_regex)]
AssetName = Annotated[str, AfterValidator(_asset)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Keywords = Annotated[list[str], Field(min_length=1)]


def _relative(value: str) -> str:
    if value.startswith("/") or ".." in value.split("/"):
        raise ValueError(f"{value!r} must be a relative path inside the work dir")
    return value


WorkPath = Annotated[str, Field(min_length=1), AfterValidator(_relative)]


# ------------------------------------------------------------------ output_files (oracles.generic)


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


class FileExpectation(OracleParams):
    equals: Annotated[str, BeforeValidator(_as_text)] | None = None  # the whole text, stripped (42 is "42")
    matches: Regex | None = None  # re.search over the text

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"got {value!r}; give {{equals: text}} or {{matches: regex}}, or nothing to check "
                             "only that the file exists")
        return value


class OutputFilesParams(OracleParams):
    # a file with no expectation ({} or nothing) is checked for existence only
    files: dict[WorkPath, FileExpectation | None]

    @field_validator("files")
    @classmethod
    def _some(cls, value: dict) -> dict:
        if not value:
            raise ValueError("names no file, so nothing would be checked; list the files the program must write")
        return value


# ------------------------------------------------------------------ dp_plan, dp_operation, dp_clean_split


class CoverageRule(OracleParams):
    keywords: Keywords
    where: Literal["name", "any"] = "any"
    unique: bool = False


class DpPlanParams(OracleParams):
    operations: int = Field(default=8, ge=1)
    name_pattern: Regex = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
    min_description_chars: int = Field(default=10, ge=0)
    required: dict[str, CoverageRule] = Field(default_factory=dict)


class DpOperationParams(OracleParams):
    label: str = "Fruit"
    output_dir: str = "out"
    nan_policy: Literal["no_new", "none", "any"] = "no_new"
    missing_keywords: Keywords = ["missing", "impute", "nan", "null"]
    duplicate_keywords: Keywords = ["duplicate", "dedup"]
    split_keywords: Keywords = ["split"]
    train_pattern: str = Field(default="train", min_length=1)
    test_pattern: str = Field(default="test", min_length=1)


class DpCleanSplitParams(OracleParams):
    input: WorkPath = "data/fruit.csv"
    train: WorkPath = "out/train.csv"
    test: WorkPath = "out/test.csv"
    label: str = "Fruit"
    channels: list[str] = Field(default=["Red", "Green", "Blue"], min_length=1)
    valid_range: list[float] = Field(default=[0, 255], min_length=2, max_length=2)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    min_class_rows: int = Field(default=2, ge=1)
    class_slack_rows: int = Field(default=1, ge=0)
    ratio_tolerance: float = Field(default=0.02, ge=0)
    scale_tolerance: float = Field(default=1e-6, ge=0)
    property_examples: int = Field(default=8, ge=0)
    check_determinism: bool = True

    @field_validator("valid_range")
    @classmethod
    def _ordered(cls, value: list[float]) -> list[float]:
        if value[0] > value[1]:
            raise ValueError(f"{value} must be [low, high] with low <= high")
        return value


# ------------------------------------------------------------------ mc_tflite (oracles.mc)

Dtype = Literal["float32", "int8", "uint8", "int16"]


class TflmParams(OracleParams):
    rows: int = Field(default=8, ge=1)
    tolerance: float = Field(default=1, ge=0)  # output quantization steps
    max_arena: int = Field(default=16 * 2**20, gt=0)


class McTfliteParams(OracleParams):
    model: WorkPath
    heldout: AssetName
    input_dtype: Dtype
    output_dtype: Dtype
    integer_weights: bool = False
    int8_weights: bool = False  # int8 weights, any bias: dynamic-range quantization passes
    ops: Literal["any", "integer_core", "int8"] = "any"
    min_agreement: Fraction = 0.95
    max_accuracy_drop: Fraction = 0.03
    max_bytes: int | None = Field(default=None, gt=0)
    tflm: TflmParams | None = None  # the oracle's ``false``; ``true`` is every default

    @field_validator("tflm", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return {} if value is True else None if value is False else value


# ------------------------------------------------------------------ vision_detection (oracles.vision)


class TensorOutputs(OracleParams):
    boxes: int = Field(ge=0)
    classes: int = Field(ge=0)
    scores: int = Field(ge=0)
    count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _distinct(self) -> "TensorOutputs":
        indices = [i for i in (self.boxes, self.classes, self.scores, self.count) if i is not None]
        if len(set(indices)) != len(indices):
            raise ValueError(f"boxes, classes, scores and count need distinct output indices, got {indices}")
        return self


class ExternalInputs(OracleParams):
    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # the variable naming the user's folder
    workspace: dict[WorkPath, str] = Field(min_length=1)  # work-dir path -> file name in that folder


class RunInfo(OracleParams):
    path: WorkPath = "out/run_info.json"
    delegate: Literal["auto", "edgetpu", "cpu"] = "auto"


class VisionDetectionParams(OracleParams):
    model: WorkPath
    labels: WorkPath
    video: WorkPath  # or one image (a one-frame video)
    output_video: WorkPath | None = None  # None: no annotated video asked for
    detections: WorkPath | None = None
    outputs: TensorOutputs = TensorOutputs(boxes=0, classes=1, scores=2, count=3)
    score_threshold: Fraction = 0.5
    label_offset: int = 0
    iou: Fraction = 0.5
    min_precision: Fraction = 0.9
    min_recall: Fraction = 0.9
    min_label_agreement: Fraction = 0.95
    min_annotated: Fraction = 0.8
    mark_threshold: float = Field(default=48, ge=0)
    min_mark_fraction: Fraction = 0.04
    max_unannotated_change: float = Field(default=8.0, ge=0)
    external_inputs: ExternalInputs | None = None
    run_info: RunInfo | None = None

    @model_validator(mode="after")
    def _judges_something(self) -> "VisionDetectionParams":
        if self.output_video is None and self.detections is None:
            raise ValueError("give output_video, detections or both: the oracle judges what the program writes")
        return self

    @model_validator(mode="after")
    def _inputs_laid_out(self, info: ValidationInfo) -> "VisionDetectionParams":
        """The oracle reads the originals of model, labels and video: each must be an input."""
        workspace = (info.context or {}).get("workspace")
        if workspace is None:
            return self
        inputs = {*workspace, *(self.external_inputs.workspace if self.external_inputs else {})}
        for key in ("model", "labels", "video"):
            if getattr(self, key) not in inputs:
                raise ValueError(f"{key} {getattr(self, key)!r} is not laid out in the work dir: add it to the "
                                 "case's workspace or to external_inputs.workspace")
        return self


# ------------------------------------------------------------------ ardsg_firmware, ardsg_app_spec


def _label_group(value: str) -> str:
    if not re.compile(value).groups:
        raise ValueError(f"{value!r} needs a group capturing the class, e.g. (?P<label>\\S+)")
    return value


class HiddenVectors(OracleParams):
    set: str = "hidden"
    files: dict[WorkPath, AssetName] = Field(default_factory=dict)  # work-dir path -> asset to lay out instead


class ArdsgFirmwareParams(OracleParams):
    vectors: AssetName = "vectors"
    set: str = "visible"
    line_pattern: Annotated[Regex, AfterValidator(_label_group)] = r"^class: (?P<label>\S+)$"
    baud: float | None = Field(default=None, gt=0)
    baud_tolerance: Fraction = 0.025
    require_run: bool = True
    spec_baud: int | None = Field(default=None, gt=0)
    spec_step: str = "spec"
    hidden: HiddenVectors | None = None


class ArdsgAppSpecParams(OracleParams):
    sensor: str = "APDS9960"
    libraries: list[str] = Field(default_factory=list)
    classes: list[str] | None = None
    input_size: int | None = Field(default=None, gt=0)
    output_size: int | None = Field(default=None, gt=0)
    min_arena: int = Field(default=1, ge=1)
    baud_rate: int | None = Field(default=None, gt=0)
