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
from typing import Annotated, Any, ClassVar, Literal

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
    """Base of a parameter model: unknown keys are errors, and so are values of the wrong type.
    Each field's ``description`` is its one line in ``pytest-autopilot oracles``; a model's
    ``example(...)`` config is the params of a typical case, shown there and in the JSON Schema."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    # the names of the checks the oracle may report (``<x>`` stands for a path, a kind, ...):
    # what ``caught_by`` may name; printed by ``pytest-autopilot oracles``
    checks: ClassVar[tuple[str, ...]] = ()


def example(params: dict[str, Any]) -> ConfigDict:
    """The config of a params model whose typical params are ``params``."""
    return ConfigDict(json_schema_extra={"examples": [params]})


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


# the pattern says the same for editors (JSON Schema only: pydantic's regex engine has no lookahead)
WorkPath = Annotated[str, Field(min_length=1, json_schema_extra={"pattern": r"^(?!/)(?!(.*/)?\.\.(/|$))"}),
                     AfterValidator(_relative)]


# ------------------------------------------------------------------ output_files (oracles.generic)


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


class FileExpectation(OracleParams):
    """What one written file must hold."""

    equals: Annotated[str, BeforeValidator(_as_text)] | None = Field(
        default=None, description="the whole text, compared stripped (42 means \"42\")")
    matches: Regex | None = Field(default=None, description="a regular expression found in the text (re.search)")

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"got {value!r}; give {{equals: text}} or {{matches: regex}}, or nothing to check "
                             "only that the file exists")
        return value


class OutputFilesParams(OracleParams):
    """Files the program must write, each checked for existence and, when asked, content."""

    checks = ("exists:<path>", "content:<path>")

    model_config = example({"files": {"out/means.csv": {"matches": "^sensor,mean"}, "out/done.txt": {"equals": "ok"}}})
    files: dict[WorkPath, FileExpectation | None] = Field(
        description="work-dir path -> {equals: text} or {matches: regex}, or nothing to check only that it exists")

    @field_validator("files")
    @classmethod
    def _some(cls, value: dict) -> dict:
        if not value:
            raise ValueError("names no file, so nothing would be checked; list the files the program must write")
        return value


# ------------------------------------------------------------------ dp_plan, dp_operation, dp_clean_split


class CoverageRule(OracleParams):
    """A kind of operation the plan must contain."""

    keywords: Keywords = Field(description="one of these must occur (case-insensitive)")
    where: Literal["name", "any"] = Field(default="any", description="in an operation's name, or in its name or description")
    unique: bool = Field(default=False, description="exactly one operation may match")


class DpPlanParams(OracleParams):
    """A JSON plan {"operations": [{"name", "description"}, ...]} (a json step: nothing runs)."""

    checks = ("plan_is_object", "operations_list", "operation_count", "names_snake_case", "names_unique",
              "descriptions_present", "covers:<kind>")

    model_config = example({"operations": 8, "required": {"split": {"keywords": ["split"], "where": "name", "unique": True}}})
    operations: int = Field(default=8, ge=1, description="the exact number of operations")
    name_pattern: Regex = Field(default=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$", description="every operation name must match it")
    min_description_chars: int = Field(default=10, ge=0, description="shortest acceptable description")
    required: dict[str, CoverageRule] = Field(default_factory=dict, description="kind -> the rule an operation must meet")


class DpOperationParams(OracleParams):
    """One pandas operation of a plan, judged by the files its JSON manifest names."""

    checks = ("exit_code_0", "outputs_exist", "outputs_parse", "not_empty", "label_column", "classes_kept",
              "duplicates_removed", "missing_handled", "no_new_nan", "no_row_explosion", "finite_values",
              "drop_only_removes", "encoding_one_to_one", "scaling_fitted_on_train", "scaling_same_for_test",
              "manifest_present", "manifest_paths", "split_files", "split_covers_input", "split_no_leakage")

    model_config = example({"label": "Fruit", "output_dir": "out", "nan_policy": "no_new"})
    label: str = Field(default="Fruit", description="the class column")
    output_dir: str = Field(default="out", description="every output must lie under this folder")
    nan_policy: Literal["no_new", "none", "any"] = Field(
        default="no_new", description="no_new: no more missing values than the input had; none: no missing value; any")
    missing_keywords: Keywords = Field(default=["missing", "impute", "nan", "null"],
                                       description="an operation so named must leave no missing value")
    duplicate_keywords: Keywords = Field(default=["duplicate", "dedup"],
                                         description="an operation so named must leave no duplicate row")
    split_keywords: Keywords = Field(default=["split"], description="an operation so named must write a train/test split")
    drop_keywords: Keywords = Field(default=["drop", "remove", "dedup", "filter"],
                                    description="an operation so named may only remove unchanged rows or columns")
    encode_keywords: Keywords = Field(default=["encode", "encoding"],
                                      description="an operation so named must give each class one code")
    scale_keywords: Keywords = Field(default=["scale", "scaling", "normali", "standardi"],
                                     description="an operation so named must scale train and test with one map fitted on train")
    train_pattern: str = Field(default="train", min_length=1, description="file-name part of the training file")
    test_pattern: str = Field(default="test", min_length=1, description="file-name part of the test file")


class DpCleanSplitParams(OracleParams):
    """Clean, min-max scale with the training split's statistics, stratified split (dp/clean_split)."""

    checks = ("exit_code_0", "outputs_exist", "outputs_parse", "columns", "dtypes", "no_nan", "no_duplicate_rows",
              "rows_match_input", "row_count", "split_ratio", "stratified", "classes_in_both", "no_leakage",
              "train_minmax", "affine_scaling", "deterministic", "property_reruns")

    model_config = example({"input": "data/fruit.csv", "label": "Fruit", "channels": ["Red", "Green", "Blue"],
                            "test_fraction": 0.2})
    input: WorkPath = Field(default="data/fruit.csv", description="the input CSV in the work dir")
    train: WorkPath = Field(default="out/train.csv", description="the training file the program writes")
    test: WorkPath = Field(default="out/test.csv", description="the test file the program writes")
    label: str = Field(default="Fruit", description="the class column")
    channels: list[str] = Field(default=["Red", "Green", "Blue"], min_length=1, description="the feature columns")
    valid_range: list[float] = Field(default=[0, 255], min_length=2, max_length=2,
                                     description="[low, high]: readings outside are dropped")
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="share of each class in the test file")
    min_class_rows: int = Field(default=2, ge=1, description="a class with fewer clean rows is dropped")
    class_slack_rows: int = Field(default=1, ge=0, description="per-class test rows may differ this much from the fraction")
    ratio_tolerance: float = Field(default=0.02, ge=0, description="allowed difference of the overall test share")
    scale_tolerance: float = Field(default=1e-6, ge=0, description="allowed difference of a scaled value")
    property_examples: int = Field(default=8, ge=0, description="re-runs on other datasets of the schema (0: none)")
    check_determinism: bool = Field(default=True, description="a second run must write identical files")

    @field_validator("valid_range")
    @classmethod
    def _ordered(cls, value: list[float]) -> list[float]:
        if value[0] > value[1]:
            raise ValueError(f"{value} must be [low, high] with low <= high")
        return value


# ------------------------------------------------------------------ mc_tflite (oracles.mc)

Dtype = Literal["float32", "int8", "uint8", "int16"]


class TflmParams(OracleParams):
    """The TensorFlow Lite Micro run."""

    rows: int = Field(default=8, ge=1, description="held-out rows compared with LiteRT")
    tolerance: float = Field(default=1, ge=0, description="allowed difference, in output quantization steps")
    max_arena: int = Field(default=16 * 2**20, gt=0, description="the largest tensor arena tried, bytes")


class McTfliteParams(OracleParams):
    """The .tflite file a conversion wrote: types, quantization, accuracy, size, TFLM."""

    checks = ("exit_code_0", "model_at_path", "model_loads", "io_shapes", "input_dtype", "output_dtype",
              "input_quantization", "output_quantization", "int8_weights", "integer_weights", "int8_ops_only",
              "integer_ops", "agreement", "accuracy_drop", "accuracy", "fits_flash", "tflm_runs", "tflm_fits_ram",
              "tflm_matches_litert")

    model_config = example({"model": "out/model.tflite", "heldout": "heldout", "input_dtype": "int8",
                            "output_dtype": "int8", "integer_weights": True, "ops": "int8", "tflm": True})
    model: WorkPath = Field(description="the .tflite path in the work dir")
    heldout: AssetName = Field(description="asset name of the held-out .npz (x, y, keras_probs)")
    input_dtype: Dtype = Field(description="the input tensor's type")
    output_dtype: Dtype = Field(description="the output tensor's type")
    integer_weights: bool = Field(default=False, description="every weighted op takes int8 weights")
    int8_weights: bool = Field(default=False, description="int8 weights, any bias: dynamic-range quantization passes")
    ops: Literal["any", "integer_core", "int8"] = Field(
        default="any", description="int8: int8 builtins only; integer_core: the same but for I/O (de)quantize")
    min_agreement: Fraction = Field(default=0.95, description="share of held-out rows with Keras's top-1")
    max_accuracy_drop: Fraction = Field(default=0.03, description="Keras accuracy minus the converted model's")
    min_accuracy: Fraction | None = Field(default=None, description="a model the program trained: held-out accuracy "
                                          "instead of agreement with a Keras model")
    max_bytes: int | None = Field(default=None, gt=0, description="file size limit besides the board's flash budget")
    tflm: TflmParams | None = Field(default=None, description="true (defaults) or settings: also run it under TFLM",
                                    json_schema_extra=lambda schema: schema["anyOf"].append({"type": "boolean"}))

    @field_validator("tflm", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return {} if value is True else None if value is False else value


# ------------------------------------------------------------------ vision_detection (oracles.vision)


class TensorOutputs(OracleParams):
    """The detector's output tensor indices."""

    boxes: int = Field(ge=0, description="index of the boxes tensor")
    classes: int = Field(ge=0, description="index of the classes tensor")
    scores: int = Field(ge=0, description="index of the scores tensor")
    count: int | None = Field(default=None, ge=0, description="index of the detection count tensor")

    @model_validator(mode="after")
    def _distinct(self) -> "TensorOutputs":
        indices = [i for i in (self.boxes, self.classes, self.scores, self.count) if i is not None]
        if len(set(indices)) != len(indices):
            raise ValueError(f"boxes, classes, scores and count need distinct output indices, got {indices}")
        return self


class ExternalInputs(OracleParams):
    """Inputs the user supplies in a folder named by an environment variable."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the variable naming the user's folder")
    workspace: dict[WorkPath, str] = Field(min_length=1, description="work-dir path -> file name in that folder")


class RunInfo(OracleParams):
    """The program's JSON report of the delegate it used."""

    path: WorkPath = Field(default="out/run_info.json", description="where the program writes it")
    delegate: Literal["auto", "edgetpu", "cpu"] = Field(
        default="auto", description="the delegate it must report (auto: edgetpu on an Edge TPU board, else cpu)")


class LabelsDrawn(OracleParams):
    """Read the label text near a sample of reference boxes (tesseract OCR)."""

    samples: int = Field(default=16, gt=0, description="reference boxes whose label area is read (one OCR call for all)")
    min_read: int = Field(default=3, gt=0, description="fewer labels read than this: no evidence, the check passes")
    min_share: Fraction = Field(default=0.5, description="of the labels read, the share naming the reference's class")


class VisionDetectionParams(OracleParams):
    """Object detection on a video: annotated output video and detections against a reference pipeline."""

    checks = ("exit_code_0", "output_video_exists", "output_video_decodes", "frame_count", "resolution", "boxes_drawn",
              "unannotated_pixels_unchanged", "labels_drawn", "detections_file", "detections_precision",
              "detections_recall", "frame_alignment", "label_agreement", "run_info", "delegate_requested")

    model_config = example({"model": "models/detect.tflite", "labels": "models/labels.txt", "video": "data/in.mp4",
                            "output_video": "out/annotated.mp4", "detections": "out/detections.jsonl"})
    model: WorkPath = Field(description="the detector model in the work dir")
    labels: WorkPath = Field(description="its label map in the work dir")
    video: WorkPath = Field(description="the input video (or one image, read as a one-frame video) in the work dir")
    output_video: WorkPath | None = Field(default=None, description="the annotated video the program writes, if the task asks for one")
    detections: WorkPath | None = Field(default=None, description="the JSON-lines detections file, if the task asks for one")
    outputs: TensorOutputs = Field(default=TensorOutputs(boxes=0, classes=1, scores=2, count=3),
                                   description="the detector's output tensor indices")
    score_threshold: Fraction = Field(default=0.5, description="reference detections below it are ignored")
    label_offset: int = Field(default=0, description="added to a class index before the label map lookup")
    iou: Fraction = Field(default=0.5, description="overlap for a detection to match a reference one")
    min_precision: Fraction = Field(default=0.9, description="of the detections, share matching the reference")
    min_recall: Fraction = Field(default=0.9, description="of the reference detections, share found")
    min_label_agreement: Fraction = Field(default=0.95, description="of overlapping detections, share with the right label")
    min_annotated: Fraction = Field(default=0.8, description="share of reference boxes visibly drawn")
    mark_threshold: float = Field(default=48, ge=0, description="pixel change that counts as a mark")
    min_mark_fraction: Fraction = Field(default=0.04, description="share of a box edge's pixels that must be marked")
    max_unannotated_change: float = Field(default=8.0, ge=0, description="mean pixel change allowed away from the boxes")
    external_inputs: ExternalInputs | None = Field(default=None, description="inputs the user supplies (not shipped)")
    run_info: RunInfo | None = Field(default=None, description="the program must report the delegate it used")
    labels_drawn: LabelsDrawn | None = Field(default=None, description="read the label text near reference boxes (tesseract OCR)")

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
    """A second, never-shown set of readings the rebuilt firmware must classify too."""

    set: str = Field(default="hidden", description="the vector set replayed")
    files: dict[WorkPath, AssetName] = Field(default_factory=dict, description="work-dir path -> asset laid out instead")


class ArdsgFirmwareParams(OracleParams):
    """Firmware built and run on a simulator or board: sizes, serial output, predictions."""

    checks = ("builds", "flash_fits", "ram_fits", "follows_spec", "ran", "finishes", "prints_output", "baud_rate",
              "output_format", "reading_count", "predictions_match", "accuracy", "hidden_vectors", "hidden:<run check>")

    model_config = example({"vectors": "vectors", "baud": 9600, "hidden": {"set": "hidden"}})
    vectors: AssetName = Field(default="vectors", description="asset name of vectors.json")
    set: str = Field(default="visible", description="the vector set the build replays")
    line_pattern: Annotated[Regex, AfterValidator(_label_group)] = Field(
        default=r"^class: (?P<label>\S+)$", description="a prediction line; its group captures the class")
    baud: float | None = Field(default=None, gt=0, description="the UART rate the firmware must configure (simavr)")
    baud_tolerance: Fraction = Field(default=0.025, description="allowed relative baud error")
    require_run: bool = Field(default=True, description="no simulator or board to run it on is a failure")
    spec_baud: int | None = Field(default=None, gt=0, description="the baud rate Serial.begin must use")
    spec_step: str = Field(default="spec", description="the earlier step whose baud_rate the sketch must use")
    hidden: HiddenVectors | None = Field(default=None, description="also replay a never-shown set of readings")
    min_accuracy: Fraction | None = Field(default=None, description="a model the pipeline trained: share of readings "
                                          "printed as their true class instead of the reference model's every one")


class ArdsgAppSpecParams(OracleParams):
    """The JSON application spec of a sketch (a json step)."""

    checks = ("spec_is_object", "keys_present", "sensor_listed", "libraries_listed", "classes", "input_tensor_size",
              "output_tensor_size", "arena_size", "baud_rate")

    model_config = example({"sensor": "APDS9960", "classes": ["apple", "banana", "orange"], "baud_rate": 9600})
    sensor: str = Field(default="APDS9960", description="the sensor the spec must list")
    libraries: list[str] = Field(default_factory=list, description="libraries the spec must list (substrings)")
    classes: list[str] | None = Field(default=None, description="the class names, in this order")
    input_size: int | None = Field(default=None, gt=0, description="input tensor element count")
    output_size: int | None = Field(default=None, gt=0, description="output tensor element count")
    min_arena: int = Field(default=1, ge=1, description="smallest tensor arena, bytes (it must fit the board's RAM)")
    baud_rate: int | None = Field(default=None, gt=0, description="exactly this rate (else any standard rate)")
