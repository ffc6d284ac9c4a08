"""The parameters of the ``dp_reference`` oracle (``oracles.dp_reference``), as a pydantic model.

Only pydantic and typing here: collection validates a case's params with this model without
importing pandas, numpy or hypothesis. Strict like the other oracles' models ("8" is not 8);
a path that must be a case input is checked against the validation context collection passes
(``{"workspace": [...]}``), when there is one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pytest_autopilot.oracles.params import OracleParams, WorkPath

Statistic = Literal["mean", "std", "median", "iqr", "min", "max"]
Pair = Annotated[list[float], Field(min_length=2, max_length=2)]


class OutputFile(OracleParams):
    """One file both programs write, compared between them."""

    path: WorkPath = Field(description="path in the work dir, e.g. out/train.csv")
    role: Literal["train", "test"] | None = Field(default=None, description="its part of the split, if any")
    row_slack: int = Field(default=0, ge=0, description="rows its count may differ from the reference's")


class ColumnSpec(OracleParams):
    """How one output column is compared (``np.isclose``-style: |got - want| <= atol + rtol * |want|).
    The default atol accepts a value written rounded to 4 decimals (off by up to 5e-5): a correct
    program may round its output unless the task says otherwise; a case needing more declares it."""

    type: Literal["auto", "float", "int", "str"] = Field(default="auto", description="auto: the reference's")
    atol: float = Field(default=1e-4, ge=0)
    rtol: float = Field(default=1e-6, ge=0)
    # affine: equal up to one increasing linear map per column (a split may pick other training
    # rows, so fitted statistics differ); its fit is then judged by ``stats``
    match: Literal["exact", "affine"] = "exact"
    stats: list[Statistic] = Field(default_factory=list, description="statistics compared in the training file")


class RowMatching(OracleParams):
    """How rows are paired: by key columns, after sorting, in file order, or (none set) in any order."""

    key: list[str] = Field(default_factory=list, description="columns identifying a row (unique)")
    sort_by: list[str] = Field(default_factory=list, description="both sides sorted by these, then paired")
    ordered: bool = Field(default=False, description="rows paired in file order")

    @model_validator(mode="after")
    def _one_way(self) -> "RowMatching":
        if sum([bool(self.key), bool(self.sort_by), self.ordered]) > 1:
            raise ValueError("give at most one of key, sort_by, ordered")
        return self


class SplitSpec(OracleParams):
    """Invariants of the files with roles train and test."""

    label: str = Field(description="the class column the split is stratified by")
    disjoint: bool = True
    stratified: bool = True
    class_slack_rows: int = Field(default=1, ge=0, description="per-class test rows may differ this much")
    # False: the candidate may pick other rows for each part (its own random split); rows are
    # then compared over train and test together, statistics in the training file
    same_rows: bool = False


class SchemaColumn(OracleParams):
    """One column of the generated inputs."""

    name: str
    type: Literal["id", "int", "float", "category"]
    range: Pair | None = Field(default=None, description="valid values, inclusive (int, float)")
    categories: list[str] = Field(default_factory=list, description="class names (category)")
    decimals: int = Field(default=3, ge=0, le=12, description="digits of generated floats")

    @model_validator(mode="after")
    def _complete(self) -> "SchemaColumn":
        if self.type in ("int", "float") and (self.range is None or self.range[0] > self.range[1]):
            raise ValueError(f"column {self.name}: a {self.type} column needs range: [low, high]")
        if self.type == "category" and not self.categories:
            raise ValueError(f"column {self.name}: a category column needs categories")
        return self


class Defects(OracleParams):
    """At most this many of each defect per generated input (each count drawn from 0 to it)."""

    duplicates: int = Field(default=0, ge=0)
    missing: int = Field(default=0, ge=0)
    out_of_range: int = Field(default=0, ge=0)


class GeneratedInputs(OracleParams):
    """Re-runs of both programs on inputs generated from this schema (with hypothesis, seeded)."""

    path: WorkPath = Field(description="the workspace input file the generated one replaces")
    columns: list[SchemaColumn] = Field(min_length=1)
    rows_per_class: Annotated[list[int], Field(min_length=2, max_length=2)] = Field(
        default=[4, 30], description="[low, high] rows per class of the first category column")
    new_categories: bool = Field(default=True, description="also draw class names the case never shows")
    defects: Defects = Defects()
    examples: int = Field(default=5, ge=0)
    seed: int = 0

    @field_validator("path")
    @classmethod
    def _an_input(cls, value: str, info: ValidationInfo) -> str:
        workspace = (info.context or {}).get("workspace")
        if workspace is not None and value not in workspace:
            raise ValueError(f"{value!r} is not a workspace path of the case; name one of: "
                             f"{', '.join(sorted(workspace)) or 'none'}")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> "GeneratedInputs":
        low, high = self.rows_per_class
        if not 1 <= low <= high:
            raise ValueError("rows_per_class: [low, high] with 1 <= low <= high")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("columns: names must be unique")
        return self


class DpReferenceParams(OracleParams):
    """``oracle: {name: dp_reference, params: ...}``: run the reference and the candidate on the
    same inputs, compare their output files, then do the same on generated inputs."""

    reference: str = Field(description="the reference solution, relative to the case file")
    files: list[OutputFile] = Field(min_length=1)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict, description="per column; others: defaults")
    column_order: bool = Field(default=True, description="columns must come in the reference's order")
    rows: RowMatching = RowMatching()
    split: SplitSpec | None = None
    generated: GeneratedInputs | None = None
    check_determinism: bool = Field(default=True, description="a second run must write identical files")

    @model_validator(mode="after")
    def _roles(self) -> "DpReferenceParams":
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("files: paths must be unique")
        roles = sorted(f.role for f in self.files if f.role)
        if self.split is not None and roles != ["test", "train"]:
            raise ValueError("split: needs exactly one file with role train and one with role test")
        if self.split is None and roles:
            raise ValueError("files: a role needs split: {label: ...}")
        return self

    def column(self, name: str) -> ColumnSpec:
        return self.columns.get(name) or ColumnSpec()

    def file(self, role: str) -> OutputFile:
        return next(f for f in self.files if f.role == role)
